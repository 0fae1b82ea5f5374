// Package pause is the body of a pod sandbox's pause process. It imports
// nothing but the standard library, so the program built from it
// (cmd/pause, embedded in the runtime) starts in a millisecond and holds a
// few hundred kilobytes.
package pause

import (
	"os"
	"os/signal"
	"syscall"
)

// Main holds the pod's namespaces, reaps the zombies it inherits as PID 1,
// and returns on SIGTERM or SIGINT.
func Main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		reapZombies()
	}
}

func reapZombies() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
