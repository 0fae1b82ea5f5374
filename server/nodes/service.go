package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/defaults"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/record"
	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/store"
)

// Defaults for Config fields left zero.
const (
	DefaultGracePeriod = 40 * time.Second
	DefaultBatchDelay  = 20 * time.Millisecond
	DefaultClusterCIDR = defaults.ClusterCIDR
)

// ServiceUser is the identity the service writes with where a node may
// not write itself: deleting terminated pods and marking silent nodes.
var ServiceUser = auth.User{Name: "system:minik:node-service", Groups: []string{auth.GroupMasters}}

// API is the API server as the service uses it: in process, as a given
// user (apiserver.Server has it).
type API interface {
	// LoopbackConfig is a client configuration that acts as u.
	LoopbackConfig(u auth.User) *rest.Config
	// UpdatePodStatus writes a pod's status as u, under the rules of a
	// PATCH of pods/NAME/status by u, without a client request: pod
	// statuses are the most frequent write. A non-empty uid is a
	// precondition on the pod's UID. It returns the revision written, or
	// 0 if it wrote none.
	UpdatePodStatus(ctx context.Context, u auth.User, namespace, name string, uid types.UID, status *corev1.PodStatus) (rev int64, err error)
}

// Config configures a Service.
type Config struct {
	Store store.Store
	API   API
	// Authority signs node certificates and knows the join token.
	Authority *pki.Authority
	// ClusterCIDR is split into a /24 per node (default DefaultClusterCIDR).
	ClusterCIDR string
	// ServerAddresses are told to agents ("host:port") when Servers is
	// nil.
	ServerAddresses []string
	// Servers, when set, is the live list of servers told to agents
	// (Register, Config, WatchServers).
	Servers *ServerSet
	// Peers, when set, knows the heartbeats other servers received; a
	// node is silent only when neither this server nor a peer heard it.
	Peers Heartbeats
	// Leading, when set, says whether this server may mark silent nodes
	// (only the leader does, so servers do not race); nil = always.
	Leading func() bool
	// GracePeriod is how long a node may go without a heartbeat before it
	// is marked Ready=Unknown (default DefaultGracePeriod).
	GracePeriod time.Duration
	// NodeLeaseRenewInterval is how often the leader renews the Lease of
	// each live node (default DefaultNodeLeaseRenewInterval).
	NodeLeaseRenewInterval time.Duration
	// BatchDelay is how long a session waits for more changes before it
	// sends a batch; each change restarts the wait (default 100ms).
	BatchDelay time.Duration
	// ServerNode names the node of the server's embedded agent, if any;
	// ServerNodeLabels are the labels (its roles) the service gives that
	// Node, which a node may not set on itself.
	ServerNode       string
	ServerNodeLabels map[string]string
	// RegistrationRate and RegistrationBurst limit registrations per join
	// token: a bucket of RegistrationBurst refilled at RegistrationRate a
	// second (defaults DefaultRegistrationRate and
	// DefaultRegistrationBurst; a negative rate = no limit).
	RegistrationRate  float64
	RegistrationBurst int
	// RegistrationGrace is how long a registered name may go without a
	// Node before its podCIDR and binding are given back: between one and
	// two periods (default DefaultRegistrationGrace).
	RegistrationGrace time.Duration
	Logger            *slog.Logger
	// Tokens, when set, signs the service account tokens nodes ask for
	// their pods (PodToken); nil answers UNIMPLEMENTED. APIAudiences are
	// the audiences of a token whose projection names none (default the
	// issuer's URL, as the API server's).
	Tokens       *serviceaccount.Issuer
	APIAudiences []string
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Service implements the api.NodeServer side of the node protocol. Its
// methods are safe for concurrent use.
type Service struct {
	api.UnimplementedNodeServer

	cfg     Config
	st      store.Store
	lg      *slog.Logger
	cidrs   *cidrAllocator
	limiter *registrationLimiter
	beats   *heartbeats
	leases  *nodeLeases
	servers *ServerSet
	hub     *hub
	events  *record.Recorder // nodes' events about their pods
	nodes   nodeChanges      // Node changes for complete sets
	echoes  *echoes          // nodes' own status writes, not sent back
	stopped chan struct{}    // closed when Run returns

	clientMu sync.Mutex
	clients  map[string]corev1client.CoreV1Interface // guarded by clientMu; by user name

	certOnce   sync.Once
	certClient certificatesv1client.CertificatesV1Interface // set by certOnce
}

var _ api.NodeServer = (*Service)(nil)

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.API == nil || cfg.Authority == nil {
		return nil, errors.New("nodes: Store, API and Authority must be set")
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.NodeLeaseRenewInterval <= 0 {
		cfg.NodeLeaseRenewInterval = DefaultNodeLeaseRenewInterval
	}
	if cfg.BatchDelay <= 0 {
		cfg.BatchDelay = DefaultBatchDelay
	}
	if cfg.RegistrationRate == 0 {
		cfg.RegistrationRate = DefaultRegistrationRate
	}
	if cfg.RegistrationBurst <= 0 {
		cfg.RegistrationBurst = DefaultRegistrationBurst
	}
	if cfg.RegistrationGrace <= 0 {
		cfg.RegistrationGrace = DefaultRegistrationGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cidr, err := netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil || !cidr.Addr().Is4() || cidr.Bits() > 24 {
		return nil, fmt.Errorf("cluster CIDR %q: must be an IPv4 prefix of /24 or larger", cfg.ClusterCIDR)
	}
	s := &Service{
		cfg:     cfg,
		st:      cfg.Store,
		lg:      cfg.Logger.With("component", "nodes"),
		cidrs:   newCIDRAllocator(cfg.Store, cidr.Masked()),
		limiter: newRegistrationLimiter(cfg.RegistrationRate, cfg.RegistrationBurst),
		echoes:  newEchoes(),
		stopped: make(chan struct{}),
		clients: map[string]corev1client.CoreV1Interface{},
	}
	s.beats = newHeartbeats(s)
	s.leases = newNodeLeases(s)
	s.servers = cfg.Servers
	if s.servers == nil {
		s.servers = NewServerSet(cfg.ServerAddresses...)
	}
	s.hub = newHub(cfg.Store, s.lg, s.stopped)
	s.hub.onNodeDeleted = s.nodes.forget
	if s.events, err = newEventRecorder(cfg.API, s.lg); err != nil {
		return nil, err
	}
	return s, nil
}

// RegisterWith adds the service to a gRPC server.
func (s *Service) RegisterWith(gs *grpc.Server) { api.RegisterNodeServer(gs, s) }

// Handler returns an http.Handler that serves GET /cacerts (the CA bundle,
// unauthenticated) and hands gRPC requests (HTTP/2 with Content-Type
// application/grpc) to gs and everything else to next. The gRPC requests
// it sees come from agents that do not offer api.NodeProtocol; the
// connections of those that do reach gs directly.
func (s *Service) Handler(gs http.Handler, next http.Handler) http.Handler {
	caPEM := s.cfg.Authority.CAPEM()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/cacerts" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(caPEM)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Run keeps the heartbeat table and the node leases, releases the podCIDR and name of deleted
// nodes and of registrations that never got a Node, and runs the watch
// that feeds sessions, until ctx ends. Sessions wait for Run to start and
// end when it returns.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.stopped)
	errc := make(chan error, 1)
	hubDone := make(chan struct{})
	go func() { errc <- s.watchNodes(ctx) }()
	go func() { s.hub.run(ctx); close(hubDone) }()
	eventsDone := make(chan struct{})
	go func() { s.events.Run(ctx); close(eventsDone) }()
	sweepDone := make(chan struct{})
	go func() { s.sweepLoop(ctx); close(sweepDone) }()
	leasesDone := make(chan struct{})
	go func() { s.leases.run(ctx); close(leasesDone) }()
	s.beats.run(ctx)
	<-leasesDone
	<-hubDone
	<-eventsDone
	<-sweepDone
	return <-errc
}

// Heartbeats tells when a node was last heard from.
type Heartbeats interface {
	LastHeartbeat(node string) (t time.Time, ok bool)
}

// LastHeartbeat returns when node last sent a heartbeat to this server or
// (through Config.Peers) to another one (or reported itself, or, after a
// server start, when the server first saw its Node); ok is false for a
// node the service knows nothing of.
func (s *Service) LastHeartbeat(node string) (t time.Time, ok bool) {
	t, ok = s.beats.last(node)
	if s.cfg.Peers != nil {
		if pt, pok := s.cfg.Peers.LastHeartbeat(node); pok && (!ok || pt.After(t)) {
			t, ok = pt, true
		}
	}
	return t, ok
}

// LocalHeartbeats returns when each node that sent heartbeats to this
// server last did; the map belongs to the caller.
func (s *Service) LocalHeartbeats() map[string]time.Time {
	return s.beats.local()
}

// callerNode returns the node whose certificate authenticated the call.
func callerNode(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", status.Error(codes.Unauthenticated, "a node client certificate is required")
	}
	leaf := ti.State.VerifiedChains[0][0]
	u := auth.User{Name: leaf.Subject.CommonName, Groups: leaf.Subject.Organization}
	node, ok := auth.NodeName(u)
	if !ok {
		return "", status.Errorf(codes.PermissionDenied, "user %q is not a node", u.Name)
	}
	return node, nil
}

// nodeUser is the identity of a node.
func nodeUser(node string) auth.User {
	return auth.User{Name: auth.NodeUserPrefix + node, Groups: []string{auth.GroupNodes}}
}

// client returns a core/v1 client that calls the API in process as u.
func (s *Service) client(u auth.User) corev1client.CoreV1Interface {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if c, ok := s.clients[u.Name]; ok {
		return c
	}
	cfg := s.cfg.API.LoopbackConfig(u)
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		// Only a malformed Host makes NewForConfig fail.
		panic(err)
	}
	s.clients[u.Name] = c
	return c
}

// grpcError maps an error from the API or the store to a gRPC status. It
// is the one place that does this mapping.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(grpcCode(err), err.Error())
}

func grpcCode(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case apierrors.IsNotFound(err), errors.Is(err, store.ErrNotFound):
		return codes.NotFound
	case apierrors.IsForbidden(err):
		return codes.PermissionDenied
	case apierrors.IsUnauthorized(err):
		return codes.Unauthenticated
	case apierrors.IsConflict(err), errors.Is(err, store.ErrConflict):
		return codes.Aborted
	case apierrors.IsAlreadyExists(err), errors.Is(err, store.ErrExists):
		return codes.AlreadyExists
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return codes.InvalidArgument
	case errors.Is(err, store.ErrClosed):
		return codes.Unavailable
	}
	return codes.Internal
}
