package runtime

import (
	"context"
	"io"
	"time"
)

// Pods manages pod sandboxes. Methods are safe to call concurrently; calls
// for one pod are serialized.
type Pods interface {
	// RunPodSandbox creates and starts the pod's sandbox, sets up its network
	// and writes its hosts, hostname and resolv.conf files and emptyDir
	// volumes. It is idempotent: for a pod whose sandbox runs, it returns the
	// current status. A sandbox that has died is replaced, after its
	// containers are stopped.
	RunPodSandbox(ctx context.Context, pod *PodSpec) (*PodStatus, error)
	// StopPod stops the pod's containers in parallel, each with SIGTERM and
	// then SIGKILL after grace, then tears down the network and stops the
	// sandbox. Files and exited containers stay until RemovePod. Stopping a
	// stopped pod is a no-op; an unknown pod gives ErrNotFound.
	StopPod(ctx context.Context, podUID string, grace time.Duration) error
	// RemovePod stops the pod (without grace) and deletes everything of it:
	// tasks, containers, snapshots, emptyDir volumes, pod files and logs.
	// Removing an unknown pod is not an error.
	RemovePod(ctx context.Context, podUID string) error
	// PodStatus returns the pod's sandbox and the latest attempt of each
	// container, or ErrNotFound. The caller owns the result.
	PodStatus(ctx context.Context, podUID string) (*PodStatus, error)
	// ListPods returns the status of every pod the runtime owns, sorted by
	// namespace and name. The caller owns the result.
	ListPods(ctx context.Context) ([]*PodStatus, error)
}

// Containers manages the application containers of a pod. Methods are safe
// to call concurrently.
type Containers interface {
	// StartContainer pulls the image as the spec's policy says, then creates
	// and starts the next attempt of the named container in the pod's
	// sandbox (attempt 0 first). If the latest attempt is running it starts
	// nothing and returns that attempt's status. Errors: ErrNotFound (no
	// pod), ErrSandboxNotReady, ErrImagePull, ErrImageNeverPull, ErrInvalid.
	StartContainer(ctx context.Context, podUID string, c *ContainerSpec) (*ContainerStatus, error)
	// StopContainer sends SIGTERM to the latest attempt of the container,
	// waits up to grace for it to exit, then sends SIGKILL. Stopping an
	// exited container is a no-op; an unknown one gives ErrNotFound.
	StopContainer(ctx context.Context, podUID, name string, grace time.Duration) error
}

// Runtime is what an agent's pod workers need.
type Runtime interface {
	Pods
	Containers
}

// Execer runs extra processes in running containers.
type Execer interface {
	// Exec runs opts.Cmd in the latest attempt of the container and returns
	// its exit code once it has exited and its output is copied. It gives
	// ErrNotFound for an unknown or stopped container. Cancelling ctx kills
	// the process.
	Exec(ctx context.Context, podUID, container string, opts ExecOptions) (int, error)
}

// Resizer changes the resources of running containers in place.
type Resizer interface {
	// ResizeContainer applies r to the cgroup of the latest attempt of the
	// container, which keeps running, and records it in the container's
	// spec. Resources r leaves unset (zero) keep their setting. It gives
	// ErrNotFound for an unknown container, ErrInvalid for one that does
	// not run. Safe to call concurrently.
	ResizeContainer(ctx context.Context, podUID, name string, r Resources) error
}

// Images stores images for containers.
type Images interface {
	// ImportTar imports every image of an OCI or docker-archive tar file and
	// unpacks it, returning the image names it holds.
	ImportTar(ctx context.Context, path string) ([]string, error)
	// Pull makes ref present as policy says: Always pulls, IfNotPresent pulls
	// when missing, Never returns ErrImageNeverPull when missing, using the
	// credentials of auth for the registries they name. Pull errors wrap
	// ErrImagePull.
	Pull(ctx context.Context, ref string, policy PullPolicy, auth ...RegistryAuth) error
}

// NetworkSetup attaches a sandbox to the pod network. It is called after the
// sandbox starts and before any container starts. Implementations must be
// safe for concurrent use and idempotent.
type NetworkSetup interface {
	// Setup attaches the network namespace at netnsPath and returns the
	// pod's IP address.
	Setup(ctx context.Context, podID, netnsPath string) (ip string, err error)
	// Teardown detaches the pod. netnsPath is empty when the sandbox is
	// already gone.
	Teardown(ctx context.Context, podID, netnsPath string) error
}

// RegistryAuth is a credential for one registry: Host is its name as in
// an image reference ("registry.example:5000"; Docker Hub under any of
// docker.io, index.docker.io, registry-1.docker.io).
type RegistryAuth struct {
	Host, Username, Password string
}

// PullPolicy is a container's imagePullPolicy.
type PullPolicy string

// Pull policies, as in Kubernetes.
const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// PodSpec is what the runtime needs to know of a pod.
type PodSpec struct {
	UID       string
	Namespace string
	Name      string
	// Hostname defaults to Name.
	Hostname string
	// ResolvConf is the content of the pod's /etc/resolv.conf; empty means
	// the host's.
	ResolvConf string
	Volumes    []Volume
	// Sysctls are namespaced kernel parameters (dotted names) set in the
	// sandbox's namespaces, which the containers share.
	Sysctls map[string]string
	// FQDN, when set, is the pod's fully qualified name
	// (HOSTNAME.SUBDOMAIN.NAMESPACE.svc.DOMAIN), listed before the
	// hostname in /etc/hosts.
	FQDN string
	// HostAliases are extra /etc/hosts entries: an IP and its names.
	HostAliases []HostAlias
	// HostNetwork runs the pod in the node's network and UTS namespaces:
	// no pod network is set up, the pod's IP is HostIP, its hostname is
	// the node's and its /etc/hosts a copy of the node's (plus the host
	// aliases), as the kubelet does.
	HostNetwork bool
	HostIP      string
}

// HostAlias is one extra /etc/hosts line.
type HostAlias struct {
	IP        string
	Hostnames []string
}

// Volume is a pod volume: an emptyDir (HostPath and Image empty), a
// hostPath, or an image volume.
type Volume struct {
	Name     string
	HostPath string
	// Image, when set, makes the volume the file system of that OCI image,
	// read-only: pulled as PullPolicy says when the first container that
	// mounts it starts, with that container's PullAuth.
	Image      string
	PullPolicy PullPolicy
	// FSGroup, for an emptyDir, is the group that owns it; the directory
	// is then setgid so that what containers create in it belongs to the
	// group too (a pod's fsGroup).
	FSGroup *int64
}

// ContainerSpec is one application container.
type ContainerSpec struct {
	Name  string
	Image string
	// PullPolicy defaults to IfNotPresent.
	PullPolicy PullPolicy
	// PullAuth are the credentials for pulling Image (a pod's
	// imagePullSecrets).
	PullAuth []RegistryAuth
	// Command replaces the image's entrypoint; Args its cmd (Kubernetes rules).
	Command    []string
	Args       []string
	Env        []EnvVar
	WorkingDir string
	Resources  Resources
	Mounts     []Mount
	TTY        bool
	// Stdin keeps the process' standard input open for Attach; StdinOnce
	// closes it when the first attach session's input ends.
	Stdin     bool
	StdinOnce bool
	// Security holds the user, groups, capabilities and privileges the
	// process runs with.
	Security SecurityContext
	// PIDNamespaceOf, when set, names a running container of the same pod
	// whose process namespace this one joins, so that it sees and can
	// signal that container's processes (an ephemeral container's target).
	PIDNamespaceOf string
}

// EnvVar is one environment variable; later entries win.
type EnvVar struct {
	Name, Value string
}

// Resources are a container's requests and limits. Zero means unset.
type Resources struct {
	CPURequestMilli  int64
	CPULimitMilli    int64
	MemoryLimitBytes int64
}

// Mount puts a pod volume, or with SubPath a file or directory in it,
// into a container.
type Mount struct {
	Volume string
	Path   string
	// SubPath is a relative path inside the volume. It is resolved, symbolic
	// links included, when the container starts, and must stay inside the
	// volume (else ErrInvalid); a missing one is created as a directory.
	SubPath  string
	ReadOnly bool
}

// ExecOptions describe a process run by Exec.
type ExecOptions struct {
	Cmd    []string
	Stdin  io.Reader // nil for no stdin
	Stdout io.Writer
	Stderr io.Writer // ignored with TTY
	TTY    bool
	// Resize, when not nil, delivers terminal sizes until it is closed or
	// the process exits.
	Resize <-chan TermSize
}

// TermSize is a terminal size in characters.
type TermSize struct {
	Width, Height uint16
}

// SandboxState is the state of a pod sandbox.
type SandboxState string

// Sandbox states.
const (
	SandboxReady    SandboxState = "Ready"
	SandboxNotReady SandboxState = "NotReady"
)

// ContainerState is the state of a container attempt.
type ContainerState string

// Container states.
const (
	ContainerCreated ContainerState = "Created"
	ContainerRunning ContainerState = "Running"
	ContainerExited  ContainerState = "Exited"
	ContainerUnknown ContainerState = "Unknown"
)

// PodStatus is the observed state of a pod.
type PodStatus struct {
	UID, Namespace, Name string
	State                SandboxState
	IP                   string
	// NetNSPath is /proc/<pid>/ns/net of the sandbox while it runs.
	NetNSPath  string
	CreatedAt  time.Time
	Containers []ContainerStatus // latest attempt per name, sorted by name
}

// Container returns the status of the named container, or nil.
func (p *PodStatus) Container(name string) *ContainerStatus {
	for i := range p.Containers {
		if p.Containers[i].Name == name {
			return &p.Containers[i]
		}
	}
	return nil
}

// ContainerStatus is the observed state of a container's latest attempt.
type ContainerStatus struct {
	Name  string
	ID    string
	Image string
	// Attempt counts restarts: 0 for the first run.
	Attempt    int
	State      ContainerState
	ExitCode   int
	Reason     string // "Completed", "Error" or "OOMKilled" once exited
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	LogPath    string
}
