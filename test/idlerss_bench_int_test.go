//go:build integration

package test

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minik-dev/minik/internal/procstatus"
)

// idleSettle is how long a fresh server runs before its RSS is read: long
// enough for every controller to have synced and the first lease renewals
// and namespace loops to have run.
const idleSettle = 30 * time.Second

// BenchmarkIntegrationServerIdleRSS reads the resident memory of an idle
// control plane (`minik server --disable-agent` on a fresh data dir) after
// idleSettle, for MINIK_BINARY and, beside it in the same run, for
// MINIK_BASELINE_BINARY if set (a build of earlier code), with the heap in
// use that the server's /metrics then reports.
//
// Each binary runs from a copy written into the benchmark's temporary
// directory. The file-backed figure counts the pages of the binary the
// process has mapped, and how many that is depends on how the file came
// into the page cache: a freshly linked binary can sit in 2 MiB folios,
// which the kernel maps whole (measured: 87 MiB of file pages of a fresh
// build, 68 MiB of a copy of it, for the same server). The copy makes both
// binaries alike, as an installed binary is.
func BenchmarkIntegrationServerIdleRSS(b *testing.B) {
	bins := map[string]string{"rss": binary(b)}
	if base := os.Getenv("MINIK_BASELINE_BINARY"); base != "" {
		bins["baseline-rss"] = base
	}
	for metric, bin := range bins {
		bins[metric] = copyBinary(b, bin)
	}
	for b.Loop() {
		for metric, bin := range bins {
			s := &serverProc{t: b, bin: bin, dataDir: b.TempDir(), port: freePort(b)}
			s.start()
			time.Sleep(idleSettle)
			status := procstatus.Of(s.cmd.Process.Pid)
			rss := procstatus.KiB(status, "VmRSS")
			anon, file := procstatus.KiB(status, "RssAnon"), procstatus.KiB(status, "RssFile")
			heap := metricValue(b, s.mustMinik("", "get", "--raw", "/metrics"), "go_memstats_heap_inuse_bytes")
			s.kill()
			if rss <= 0 {
				b.Fatalf("%s: no VmRSS", bin)
			}
			b.ReportMetric(float64(rss)/1024, metric+"-MiB")
			b.ReportMetric(float64(anon)/1024, metric+"-anon-MiB")
			b.ReportMetric(float64(file)/1024, metric+"-file-MiB")
			b.ReportMetric(heap/(1<<20), metric+"-heapinuse-MiB")
			// File pages are the binary's, shared and reclaimable.
			b.Logf("%s: idle server RSS %.1f MiB (anonymous %.1f, file %.1f; heap in use %.1f)", bin,
				float64(rss)/1024, float64(anon)/1024, float64(file)/1024, heap/(1<<20))
		}
	}
}

// copyBinary copies the executable at path into a temporary directory and
// returns the copy's path.
func copyBinary(t testing.TB, path string) string {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatalf("binary: %v", err)
	}
	defer src.Close()
	dst := filepath.Join(t.TempDir(), filepath.Base(path))
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatalf("copying binary: %v", err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		t.Fatalf("copying %s: %v", path, err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("copying %s: %v", path, err)
	}
	return dst
}

// metricValue returns the value of the unlabelled sample name in the
// Prometheus text exposition text.
func metricValue(t testing.TB, text, name string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s in /metrics", name)
	return 0
}
