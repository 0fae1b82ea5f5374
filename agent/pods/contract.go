package pods

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// This file is the seam between the pod manager (this package) and the
// rest of the agent: the session that feeds it the pods bound to the node
// and carries statuses back, and the tunnel that serves logs and exec.

// Reporter receives what the node learns about its pods. The session
// batches these towards the server. Implementations must be safe for
// concurrent use and must not block for long.
type Reporter interface {
	// PodStatus reports the current status of a pod (phase, conditions,
	// podIP, container statuses). Only changes need be reported.
	PodStatus(pod types.NamespacedName, uid types.UID, status corev1.PodStatus)
	// PodTerminated reports that a pod marked for deletion
	// (deletionTimestamp set) has stopped every container and released its
	// resources: the server may now remove it.
	PodTerminated(pod types.NamespacedName, uid types.UID)
}

// ExecStreams are the streams of one exec session. Any may be nil.
type ExecStreams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // unused when TTY is set
	TTY    bool
	// Resize delivers terminal size changes (TTY only); closed at the end.
	Resize <-chan TermSize
}

// TermSize is a terminal size in characters.
type TermSize struct {
	Width, Height uint16
}

// Streamer serves logs and exec for the pods of this node. The tunnel
// calls it for requests the server forwards. ErrNotFound (wrapped) when the
// pod or container is not on this node.
type Streamer interface {
	// Logs writes the container's log to w as Kubernetes does: plain lines,
	// or with RFC3339Nano timestamps when opts.Timestamps; honours
	// TailLines, SinceSeconds, LimitBytes, Previous and Follow (Follow
	// returns when ctx ends or the container has exited and the log is
	// drained).
	Logs(ctx context.Context, pod types.NamespacedName, container string, opts *corev1.PodLogOptions, w io.Writer) error
	// Exec runs cmd in the container and returns its exit code.
	Exec(ctx context.Context, pod types.NamespacedName, container string, cmd []string, streams ExecStreams) (exitCode int, err error)
}
