package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// Labels the runtime puts on its containerd containers.
const (
	LabelKind         = "minik.io/kind" // KindSandbox or KindContainer
	LabelPodUID       = "minik.io/pod-uid"
	LabelPodName      = "minik.io/pod-name"
	LabelPodNamespace = "minik.io/pod-namespace"
	LabelContainer    = "minik.io/container"
	LabelAttempt      = "minik.io/attempt"
	LabelPodIP        = "minik.io/pod-ip"
	LabelHostNetwork  = "minik.io/host-network" // "true" on the sandbox of a pod on the node's network
	LabelExitCode     = "minik.io/exit-code"
	LabelFinishedAt   = "minik.io/finished-at"
	LabelStartedAt    = "minik.io/started-at"
	LabelLogPath      = "minik.io/log-path"
	LabelImage        = "minik.io/image"

	KindSandbox   = "sandbox"
	KindContainer = "container"
)

// groupAnnotation makes the runc shim serve all containers with the same
// value from one process.
const groupAnnotation = "io.containerd.runc.v2.group"

// Config configures a Containerd runtime.
type Config struct {
	// Address is containerd's socket.
	Address string
	// DataDir holds pod files, volumes, logs, FIFOs and the pause rootfs.
	DataDir string
	// Namespace is the containerd namespace (default "minik"); give each
	// agent sharing a containerd its own.
	Namespace string
	// CgroupParent is the cgroup under which pods go (default "/minik").
	// Give each agent on a host its own.
	CgroupParent string
	// Snapshotter defaults to "overlayfs".
	Snapshotter string
	// Network attaches sandboxes; nil leaves them with loopback only.
	Network NetworkSetup
	// PauseBinary is the executable run as "PauseBinary pause" in each
	// sandbox; default: this process' executable.
	PauseBinary string
	// Registries are the mirrors and registry settings pulls use; the
	// zero value pulls from the registry an image names.
	Registries Registries
	Logger     *slog.Logger
}

// Containerd runs pods on containerd. It implements Runtime, Execer,
// Attacher and Images; all methods are safe for concurrent use.
type Containerd struct {
	client *client.Client
	cfg    Config
	lg     *slog.Logger
	pause  pauseFiles

	mu     sync.Mutex             // guards locks and tasks
	locks  map[string]*sync.Mutex // per pod UID
	tasks  map[string]*taskWatch  // by container ID
	wg     sync.WaitGroup         // task watchers
	closed chan struct{}
}

var (
	_ Runtime  = (*Containerd)(nil)
	_ Execer   = (*Containerd)(nil)
	_ Attacher = (*Containerd)(nil)
	_ Images   = (*Containerd)(nil)
)

// New connects to containerd, prepares the data directory and adopts the
// tasks already running in cfg.Namespace: their logs and exit statuses are
// followed again, nothing is restarted.
func New(ctx context.Context, cfg Config) (*Containerd, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "minik"
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/minik"
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = "overlayfs"
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{"fifo", "sandboxes", "pods"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o711); err != nil {
			return nil, err
		}
	}
	pause, err := preparePause(cfg.DataDir, cfg.PauseBinary)
	if err != nil {
		return nil, fmt.Errorf("prepare pause rootfs: %w", err)
	}
	cl, err := client.New(cfg.Address, client.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %q: %w", cfg.Address, err)
	}
	c := &Containerd{
		client: cl, cfg: cfg, lg: lg.With("component", "runtime"), pause: pause,
		locks: map[string]*sync.Mutex{}, tasks: map[string]*taskWatch{}, closed: make(chan struct{}),
	}
	if err := c.adopt(c.ctx(ctx)); err != nil {
		cl.Close()
		return nil, fmt.Errorf("adopt running containers: %w", err)
	}
	return c, nil
}

// Client is the underlying containerd client.
func (c *Containerd) Client() *client.Client { return c.client }

// Namespace is the containerd namespace the runtime works in.
func (c *Containerd) Namespace() string { return c.cfg.Namespace }

// RemoveCgroupParent removes the runtime's cgroup parent if no pod is left
// in it; call it when the node is torn down.
func (c *Containerd) RemoveCgroupParent() { removeCgroup(c.cfg.CgroupParent) }

// Close stops following tasks and closes the connection; containers keep
// running.
func (c *Containerd) Close() error {
	close(c.closed)
	c.mu.Lock()
	for _, w := range c.tasks {
		w.detach()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return c.client.Close()
}

// ctx adds the runtime's containerd namespace.
func (c *Containerd) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.cfg.Namespace)
}

// lockPod serializes operations on one pod; call the returned func to unlock.
func (c *Containerd) lockPod(uid string) func() {
	c.mu.Lock()
	l, ok := c.locks[uid]
	if !ok {
		l = &sync.Mutex{}
		c.locks[uid] = l
	}
	c.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (c *Containerd) sandboxDir(uid string) string {
	return filepath.Join(c.cfg.DataDir, "sandboxes", uid)
}

func (c *Containerd) logDir(ns, name, uid string) string {
	return filepath.Join(c.cfg.DataDir, "pods", ns+"_"+name+"_"+uid)
}

func (c *Containerd) fifoDir() string { return filepath.Join(c.cfg.DataDir, "fifo") }

// cgroupPath is the cgroup of one container of a pod.
func (c *Containerd) cgroupPath(uid, id string) string {
	return filepath.Join(c.cfg.CgroupParent, "pod"+uid, id)
}

var errClosed = errors.New("runtime: closed")
