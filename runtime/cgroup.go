package runtime

import (
	"os"
	"path/filepath"
)

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// removeCgroup removes the (empty) cgroup at path, relative to each
// hierarchy, in every hierarchy: the v1 controllers, the unified one, or a
// pure v2 mount. Runc removes container cgroups; pod and agent levels are
// the runtime's to remove.
func removeCgroup(path string) {
	dirs := []string{filepath.Join(cgroupRoot, path)}
	if entries, err := os.ReadDir(cgroupRoot); err == nil {
		for _, e := range entries {
			dirs = append(dirs, filepath.Join(cgroupRoot, e.Name(), path))
		}
	}
	for _, d := range dirs {
		os.Remove(d) // only empty cgroups go; others stay
	}
}
