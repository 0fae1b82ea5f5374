package runtime

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNotFound is returned for a pod, container or image that does not exist.
	ErrNotFound = errors.New("runtime: not found")
	// ErrImagePull wraps a failed pull; the message carries the registry's
	// answer. Agents report it as ErrImagePull and back off (ImagePullBackOff).
	ErrImagePull = errors.New("runtime: image pull failed")
	// ErrImageNeverPull is returned when the image is missing and the pull
	// policy is Never.
	ErrImageNeverPull = errors.New("runtime: image not present and pull policy is Never")
	// ErrSandboxNotReady is returned when a container is started in a pod
	// whose sandbox is not running.
	ErrSandboxNotReady = errors.New("runtime: pod sandbox not ready")
	// ErrInvalid is returned for a spec the runtime cannot run.
	ErrInvalid = errors.New("runtime: invalid spec")
)
