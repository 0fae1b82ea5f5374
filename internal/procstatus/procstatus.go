// Package procstatus reads memory figures from a Linux /proc status file,
// for benchmarks that report the resident memory of a process.
package procstatus

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// Self is the status file of the calling process.
const Self = "/proc/self/status"

// Of is the status file of process pid.
func Of(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/status" }

// KiB returns a memory field of the status file at path ("VmRSS",
// "VmHWM", …) in KiB, or 0 if the file or the field is missing.
func KiB(path, field string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib
		}
	}
	return 0
}
