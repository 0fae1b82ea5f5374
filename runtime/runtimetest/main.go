package runtimetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/minik-dev/minik/runtime"
)

// Main is the TestMain of a package whose tests run pods on a real
// containerd: the test binary serves as the sandboxes' pause process when
// started as one, and after the tests the cgroup parents named
// cgroupParent (under every controller's hierarchy) are removed.
func Main(m *testing.M, cgroupParent string) {
	if len(os.Args) > 1 && os.Args[1] == runtime.PauseArg {
		runtime.PauseMain()
		return
	}
	code := m.Run()
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroupParent))
	for _, d := range dirs {
		os.Remove(d)
	}
	os.Exit(code)
}
