// Package netns runs code inside another network namespace.
package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has joined the network namespace at
// path; an empty path runs fn directly. Sockets fn creates stay in that
// namespace, and processes it starts inherit it. The thread is discarded
// afterwards, so no other goroutine ever runs in the namespace.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends a thread whose goroutine exits
		// while locked.
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %q: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
