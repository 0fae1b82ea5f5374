package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/internal/defaults"
	"github.com/minik-dev/minik/runtime"
)

// Runtime is what the manager needs of the container runtime.
// *runtime.Containerd and runtimetest.Fake implement it.
type Runtime interface {
	runtime.Pods
	runtime.Containers
}

// garbageCollector is an optional Runtime ability: removing whatever
// belongs to no desired pod, including containers without a sandbox.
type garbageCollector interface {
	GC(ctx context.Context, keep func(podUID string) bool) error
}

var (
	_ garbageCollector = (*runtime.Containerd)(nil)
	_ Runtime          = (*runtime.Containerd)(nil)
)

// Defaults for Config fields left zero.
const (
	DefaultBackoffBase   = 10 * time.Second
	DefaultBackoffMax    = 300 * time.Second
	DefaultSyncPeriod    = time.Second
	DefaultClusterDomain = defaults.ClusterDomain
	defaultGrace         = 30 * time.Second
)

// Config configures a Manager.
type Config struct {
	// NodeName is this node's name (spec.nodeName in the downward API).
	NodeName string
	// NodeIP is reported as each pod's hostIP.
	NodeIP string
	// Allocatable is what the node offers pods: resourceFieldRef reads
	// it for a limit the container does not set, as the kubelet does.
	Allocatable corev1.ResourceList
	// DataDir is the agent's data directory; required. Relative container log paths
	// from the runtime are resolved against it; the contents of configMap,
	// secret, downwardAPI and projected volumes are kept under
	// DataDir/pod-volumes.
	DataDir string
	// Runtime runs the pods. If it also implements runtime.Execer, Exec
	// works; runtime.Images, ImportImages works.
	Runtime Runtime
	// Reporter receives pod statuses and terminations. Required.
	Reporter Reporter
	// ClusterDNS are the nameservers of ClusterFirst pods; empty means the
	// host's nameservers.
	ClusterDNS []string
	// ClusterDomain defaults to DefaultClusterDomain.
	ClusterDomain string
	// BackoffBase and BackoffMax bound the delay before restarting a
	// crashed container or retrying a failed image pull; defaults
	// DefaultBackoffBase and DefaultBackoffMax.
	BackoffBase, BackoffMax time.Duration
	// SyncPeriod is how often each pod is compared with the runtime to
	// notice exits; default DefaultSyncPeriod.
	SyncPeriod time.Duration
	Logger     *slog.Logger
	// Tokens issues the tokens of serviceAccountToken projections; nil
	// leaves them out of the volumes.
	Tokens TokenSource
	// Certificates creates the PodCertificateRequests of podCertificate
	// projections; nil leaves their volumes unready.
	Certificates CertificateSource
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Manager runs the pods bound to this node: it starts and restarts their
// containers, reports their statuses and stops the pods that are deleted.
// It implements Streamer.
type Manager struct {
	cfg     Config
	lg      *slog.Logger
	hostDNS dnsConfig

	mu      sync.Mutex // guards desired, byName, received and objs
	desired map[types.UID]*corev1.Pod
	byName  map[types.NamespacedName]*corev1.Pod
	// received is set by the first SetPods; Run touches nothing before.
	received bool
	objs     *Objects
	// tokens holds the pods' service account tokens; nil without
	// Config.Tokens.
	tokens *tokenCache
	// certs holds the pods' certificates; nil without
	// Config.Certificates.
	certs   *certManager
	changed chan struct{} // cap 1: desired changed
	// certsChanged (cap 1) tells Run that the certificates of the pods in
	// renewed changed.
	certsChanged chan struct{}
	renewed      map[types.UID]bool // guarded by mu
	// objsChanged (cap 1) tells Run that the ConfigMaps or Secrets changed,
	// so that workers refresh their pods' volumes.
	objsChanged chan struct{}
}

var _ Streamer = (*Manager)(nil)

// NewManager returns a manager for cfg; Run starts it.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Runtime == nil || cfg.Reporter == nil || cfg.DataDir == "" {
		return nil, errors.New("pods: Runtime, Reporter and DataDir must be set")
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffBase)
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = DefaultClusterDomain
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg: cfg, lg: lg.With("component", "pods"), hostDNS: readHostDNS(),
		desired: map[types.UID]*corev1.Pod{}, byName: map[types.NamespacedName]*corev1.Pod{},
		objs:    &Objects{},
		changed: make(chan struct{}, 1), objsChanged: make(chan struct{}, 1),
		certsChanged: make(chan struct{}, 1), renewed: map[types.UID]bool{},
	}
	if cfg.Tokens != nil {
		m.tokens = newTokenCache(cfg.Tokens, cfg.Now)
	}
	if cfg.Certificates != nil {
		m.certs = newCertManager(cfg.Certificates, cfg.Now, m.lg)
		m.certs.changed = m.certificatesChanged
		m.certs.event = m.podEvent
	}
	return m, nil
}

// SetPods replaces the desired set: every pod bound to this node. Pods
// left out are stopped and removed without a report. The manager keeps
// copies; the caller may change pods afterwards. Safe for concurrent use;
// it does not block.
func (m *Manager) SetPods(pods []*corev1.Pod) {
	desired := make(map[types.UID]*corev1.Pod, len(pods))
	byName := make(map[types.NamespacedName]*corev1.Pod, len(pods))
	for _, p := range pods {
		c := p.DeepCopy()
		desired[c.UID] = c
		byName[types.NamespacedName{Namespace: c.Namespace, Name: c.Name}] = c
	}
	m.mu.Lock()
	m.desired, m.byName, m.received = desired, byName, true
	m.mu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// SetObjects replaces the ConfigMaps, Secrets, Services and
// ClusterTrustBundles the node knows.
// Environments read them when a container starts; configMap, secret and
// projected volumes are brought up to date with them at once. The manager
// keeps objs and what it holds: the caller must not change them
// afterwards, and gives a changed object as a new one. Safe for
// concurrent use; it does not block.
func (m *Manager) SetObjects(objs Objects) {
	m.mu.Lock()
	old := m.objs
	m.objs = &objs
	m.mu.Unlock()
	// Volumes read only ConfigMaps, Secrets and ClusterTrustBundles; a
	// change of Services alone, the common case, leaves the workers
	// alone. Objects that did not change are the same pointers.
	if samePointers(old.ConfigMaps, objs.ConfigMaps) && samePointers(old.Secrets, objs.Secrets) &&
		samePointers(old.ClusterTrustBundles, objs.ClusterTrustBundles) {
		return
	}
	select {
	case m.objsChanged <- struct{}{}:
	default:
	}
}

// samePointers tells whether a and b map the same keys to the same
// objects.
func samePointers[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// certificatesChanged asks the worker of pod uid to write its volumes
// again. It does not block.
func (m *Manager) certificatesChanged(uid types.UID) {
	m.mu.Lock()
	m.renewed[uid] = true
	m.mu.Unlock()
	select {
	case m.certsChanged <- struct{}{}:
	default:
	}
}

// objects returns the latest Objects; they are never modified.
func (m *Manager) objects() *Objects {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objs
}

// snapshot returns the desired set; pods in it are never modified.
func (m *Manager) snapshot() map[types.UID]*corev1.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.desired
}

// lookup returns the desired pod with the given name.
func (m *Manager) lookup(name types.NamespacedName) (*corev1.Pod, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.byName[name]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("pod %q in namespace %q: %w", name.Name, name.Namespace, ErrNotFound)
}

// Run reconciles the runtime with the desired set until ctx ends. It waits
// for the first SetPods, so that an agent restarting does not remove pods
// before the session has delivered them; then it removes what runs but is
// not desired, adopts what is (without restarting it), and keeps one worker
// per pod. It returns nil once every worker has exited; the pods keep
// running.
func (m *Manager) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-m.changed:
	}
	if m.certs != nil {
		m.certs.start(ctx)
		defer m.certs.wait()
	}
	m.collect(ctx, m.snapshot())
	s := &supervisor{m: m, workers: map[types.UID]*worker{}, rejected: map[types.UID]*rejection{}, done: make(chan types.UID)}
	defer s.wg.Wait()
	s.reconcile(ctx, m.snapshot())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.changed:
			s.reconcile(ctx, m.snapshot())
		case <-m.objsChanged:
			for _, w := range s.workers {
				w.refresh()
			}
		case <-m.certsChanged:
			m.mu.Lock()
			renewed := m.renewed
			m.renewed = map[types.UID]bool{}
			m.mu.Unlock()
			for uid := range renewed {
				if w := s.workers[uid]; w != nil {
					w.refresh()
				}
			}
		case uid := <-s.done:
			delete(s.workers, uid)
			delete(s.rejected, uid)
			s.reconcile(ctx, m.snapshot())
		}
	}
}

// collect removes the pods the runtime holds that are not desired.
func (m *Manager) collect(ctx context.Context, desired map[types.UID]*corev1.Pod) {
	keep := func(uid string) bool { return desired[types.UID(uid)] != nil }
	running, err := m.cfg.Runtime.ListPods(ctx)
	if err != nil {
		m.lg.Warn("list pods", "err", err)
	}
	for _, p := range running {
		if keep(p.UID) {
			m.lg.Info("adopting pod", "pod", p.Namespace+"/"+p.Name, "uid", p.UID)
			continue
		}
		m.lg.Info("removing pod not bound here", "pod", p.Namespace+"/"+p.Name, "uid", p.UID)
		if err := m.cfg.Runtime.RemovePod(ctx, p.UID); err != nil {
			m.lg.Warn("remove pod", "uid", p.UID, "err", err)
		}
	}
	m.collectVolumes(desired)
	if gc, ok := m.cfg.Runtime.(garbageCollector); ok {
		if err := gc.GC(ctx, keep); err != nil {
			m.lg.Warn("collect garbage", "err", err)
		}
	}
}

// supervisor owns the workers; only Run's goroutine uses it.
type supervisor struct {
	m       *Manager
	workers map[types.UID]*worker
	// rejected holds the refusals of the pods admission turned away, for
	// as long as their workers live.
	rejected map[types.UID]*rejection
	done     chan types.UID
	wg       sync.WaitGroup
}

// reconcile starts a worker per new pod, admitted or rejected, hands
// changed pods to theirs and tells the workers of pods no longer desired
// to remove them.
func (s *supervisor) reconcile(ctx context.Context, desired map[types.UID]*corev1.Pod) {
	for uid, w := range s.workers {
		w.update(desired[uid])
	}
	rejections := s.admitNew(desired)
	for uid, p := range desired {
		if s.workers[uid] != nil {
			continue
		}
		w := newWorker(s.m, p)
		if r := rejections[uid]; r != nil {
			w.rejection = r
			s.rejected[uid] = r
		}
		s.workers[uid] = w
		s.wg.Go(func() {
			w.run(ctx)
			select {
			case s.done <- uid:
			case <-ctx.Done():
			}
		})
	}
}
