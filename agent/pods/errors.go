package pods

import "errors"

// ErrNotFound is returned (wrapped) by the Streamer for a pod or container
// that is not on this node, and for a previous log that does not exist.
var ErrNotFound = errors.New("pods: not found")

// errUnsupported marks a pod spec field the node cannot honour; the
// container waits with reason CreateContainerConfigError.
var errUnsupported = errors.New("pods: unsupported")
