package runtime

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/minik-dev/minik/runtime/pause"
)

// PauseArg is the argument with which the runtime runs its own executable
// as a sandbox's pause process. The program's main must dispatch it to
// PauseMain before anything else:
//
//	if len(os.Args) > 1 && os.Args[1] == runtime.PauseArg {
//		runtime.PauseMain()
//		return
//	}
const PauseArg = "pause"

// pauseTarget is where the executable appears inside the sandbox.
const pauseTarget = "/pause"

// PauseMain is the body of a sandbox's pause process: it holds the pod's
// namespaces, reaps the zombies it inherits as PID 1, and returns on SIGTERM
// or SIGINT.
func PauseMain() { pause.Main() }

// pauseFiles is what every sandbox shares: an empty read-only root and the
// mounts that bring the executable (and, if it is dynamically linked, the
// host's libraries) into it.
type pauseFiles struct {
	rootfs string
	mounts []specs.Mount
}

// preparePause creates DIR/pause/rootfs with the mount points a sandbox
// needs. binary defaults to the embedded static pause program.
func preparePause(dataDir, binary string) (pauseFiles, error) {
	if binary == "" {
		path, err := writePauseBinary(dataDir)
		if err != nil {
			return pauseFiles{}, err
		}
		binary = path
	}
	binary, err := filepath.EvalSymlinks(binary)
	if err != nil {
		return pauseFiles{}, err
	}
	rootfs := filepath.Join(dataDir, "pause", "rootfs")
	for _, d := range []string{"proc", "dev", "sys", "run", "usr", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return pauseFiles{}, err
		}
	}
	if err := touch(filepath.Join(rootfs, pauseTarget)); err != nil {
		return pauseFiles{}, err
	}
	p := pauseFiles{rootfs: rootfs, mounts: []specs.Mount{bindMount(binary, pauseTarget, true)}}
	dynamic, err := isDynamic(binary)
	if err != nil {
		return pauseFiles{}, err
	}
	if dynamic {
		libs, err := libraryMounts(rootfs)
		if err != nil {
			return pauseFiles{}, err
		}
		p.mounts = append(p.mounts, libs...)
	}
	return p, nil
}

// isDynamic reports whether the executable needs an ELF interpreter.
func isDynamic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("read pause binary %q: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// libraryMounts mirrors the host's library directories into rootfs: a
// symbolic link stays a link, a directory is bind-mounted read-only.
func libraryMounts(rootfs string) ([]specs.Mount, error) {
	var mounts []specs.Mount
	for _, dir := range []string{"lib", "lib64", "lib32", "usr/lib", "usr/lib64", "usr/lib32"} {
		host := "/" + dir
		fi, err := os.Lstat(host)
		if err != nil {
			continue
		}
		in := filepath.Join(rootfs, dir)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(host)
			if err != nil {
				return nil, err
			}
			if cur, err := os.Readlink(in); err == nil && cur == target {
				continue
			}
			os.Remove(in)
			if err := os.Symlink(target, in); err != nil {
				return nil, err
			}
		case fi.IsDir():
			if err := os.MkdirAll(in, 0o755); err != nil {
				return nil, err
			}
			mounts = append(mounts, bindMount(host, host, true))
		}
	}
	return mounts, nil
}

func bindMount(src, dst string, readOnly bool) specs.Mount {
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", mode}}
}

func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
