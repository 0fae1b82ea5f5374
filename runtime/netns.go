package runtime

import (
	"fmt"
	"os"
	"runtime"

	"github.com/containerd/containerd/v2/pkg/cio"
	"golang.org/x/sys/unix"
)

// cio0 gives a task no stdio.
var cio0 = cio.NullIO

// loopbackUp brings up "lo" in the network namespace at path. It creates a
// socket inside the namespace (the thread enters it only for that) and
// sets the interface flags through it.
func loopbackUp(path string) error {
	fd, err := socketIn(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// socketIn returns a datagram socket created in the network namespace at path.
func socketIn(path string) (int, error) {
	target, err := os.Open(path)
	if err != nil {
		return -1, err
	}
	defer target.Close()
	runtime.LockOSThread()
	// The thread is left locked (and so discarded when this goroutine ends)
	// if it cannot return to its own namespace.
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("enter netns %q: %w", path, err)
	}
	fd, sockErr := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		if sockErr == nil {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("leave netns %q: %w", path, err)
	}
	runtime.UnlockOSThread()
	return fd, sockErr
}
