// Package server runs minik's control plane: the store, the API server,
// the controllers, the scheduler and the node service.
//
// Servers that share an etcd datastore form one control plane: any of them
// serves the API; the controllers and the scheduler run on an elected
// leader; each keeps a lease-backed record in the datastore, learns the
// others' addresses for the agents and shares its nodes' heartbeats; logs
// and exec go to the server a node is connected to (all in server/coord).
// The first server keeps the cluster's CA and secrets, sealed, in the
// datastore for the others (bootstrap.go).
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/agent"
	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/controllers"
	"github.com/minik-dev/minik/server/coord"
	"github.com/minik-dev/minik/server/manifests"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/rbac"
	"github.com/minik-dev/minik/server/scheduler"
	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/server/streaming"
	"github.com/minik-dev/minik/store"
)

// shutdownGrace bounds how long open requests may take once the server is
// asked to stop.
const shutdownGrace = 5 * time.Second

// Run runs the control plane until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := controllers.CheckDisabled(cfg.DisableControllers); err != nil {
		return fmt.Errorf("disable-controller: %w", err)
	}
	if !cfg.DisableAgent {
		// The embedded agent would only log a bad registries file.
		if _, err := agent.LoadRegistries(filepath.Join(cfg.DataDir, "agent"), cfg.RegistriesConfig); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !cfg.DisableManifests {
		if err := os.MkdirAll(manifests.Dir(cfg.DataDir), 0o700); err != nil {
			return fmt.Errorf("manifests dir: %w", err)
		}
	}
	st, err := openStore(ctx, cfg, cfg.Logger)
	if err != nil {
		return err
	}
	defer st.Close()
	s := &instance{cfg: cfg, lg: cfg.Logger, st: st}
	if s.snaps, err = newSnapshots(cfg, st, cfg.Logger); err != nil {
		return err
	}
	if err := s.credentials(ctx); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := s.listen(); err != nil {
		return err
	}
	s.coordinate()
	if err := s.startAPI(ctx); err != nil {
		s.ln.Close()
		return err
	}
	// In-process components (node service, controllers, scheduler) use
	// the API over the loopback; it must serve before agents can connect.
	loopCtx, stopLoopback := context.WithCancel(ctx)
	defer stopLoopback()
	s.loopback = s.api.ServeLoopback(loopCtx)
	if err := reconcilePolicy(ctx, s.loopback, s.policy); err != nil {
		s.ln.Close()
		return err
	}
	if err := s.startNodeService(); err != nil {
		s.ln.Close()
		return err
	}
	return s.serve(ctx)
}

// instance is one server's parts, filled in by Run's phases in turn.
type instance struct {
	cfg Config
	lg  *slog.Logger
	st  datastore
	// snaps saves snapshots of st, by hand and on schedule.
	snaps *snapshots

	authority *pki.Authority
	authn     *auth.Authenticator // its token table follows the authority's
	ln        net.Listener
	self      string // advertised host:port
	servers   *nodes.ServerSet
	co        coord.Coordinator
	peers     coord.Peers // nil when the server is alone

	policy   *rbac.Authorizer
	streams  *streaming.Server
	issuer   *serviceaccount.Issuer
	api      *apiserver.Server
	loopback *rest.Config
	nodeSvc  *nodes.Service
	grpc     *grpc.Server
}

// credentials sets up the server's certificates and tokens, shared with
// the other servers of its cluster.
func (s *instance) credentials(ctx context.Context) error {
	secrets, _ := coord.SecretsOf(s.st)
	a, err := bootstrap(ctx, s.cfg, secrets, advertiseHost(s.cfg), s.lg)
	s.authority = a
	s.snaps.src.authority = a
	return err
}

// listen opens the HTTPS port.
func (s *instance) listen() error {
	addr := net.JoinHostPort(s.cfg.BindAddress, strconv.Itoa(s.cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.ln, s.self = ln, net.JoinHostPort(advertiseHost(s.cfg), port)
	return nil
}

// coordinate sets up the coordination with the other servers sharing the
// store (a lone server always leads).
func (s *instance) coordinate() {
	s.servers = nodes.NewServerSet(s.self)
	s.co = coord.New(s.st, coord.Options{Self: s.self, Servers: s.servers, PublishEvery: publishInterval(s.cfg), Logger: s.lg})
	if p, ok := s.co.(coord.Peers); ok {
		s.peers = p
	}
}

// startAPI builds the API server and creates the default namespaces.
func (s *instance) startAPI(ctx context.Context) error {
	s.policy = rbac.New(s.st, s.lg)
	authz := &auth.Authorizer{Policy: s.policy}
	s.streams = streaming.NewServer(s.lg, nil)
	var podStreams apiserver.PodStreamer = s.streams
	if s.peers != nil {
		podStreams = coord.NewPodStreamRouter(s.streams, s.co, s.self, s.authority, s.lg)
	}
	issuer, err := serviceaccount.NewIssuer(s.authority.ServiceAccountKey(), serviceaccount.DefaultIssuer)
	if err != nil {
		return err
	}
	// Service account tokens are checked against the objects they name,
	// which the API server reads: it exists before any request arrives.
	var api *apiserver.Server
	saTokens := serviceaccount.NewAuthenticator(issuer, serviceaccount.GetterFunc(
		func(ctx context.Context, resource, namespace, name string) (string, time.Time, error) {
			return api.ObjectUID(ctx, resource, namespace, name)
		}), serviceaccount.AuthenticatorOptions{})
	authn := auth.NewAuthenticator(s.authority.ClientCAPool(), fixedTokens(s.authority)).
		WithTokenAuthenticator(saTokens, saTokens.Audiences()).
		WithRequestHeader(auth.RequestHeader{
			CA:                  s.authority.FrontProxyCACert(),
			AllowedNames:        []string{pki.FrontProxyClientName},
			UsernameHeaders:     []string{auth.RemoteUserHeader},
			GroupHeaders:        []string{auth.RemoteGroupHeader},
			ExtraHeaderPrefixes: []string{auth.RemoteExtraHeaderPrefix},
		})
	s.authn = authn
	api, err = apiserver.New(apiserver.Config{
		Store:                 s.st,
		Authenticator:         authn,
		ServiceAccounts:       issuer,
		Authorizer:            authz,
		Rules:                 s.policy,
		PodStreams:            podStreams,
		FrontProxyCertificate: s.authority.FrontProxyClientCertificate,
		Logger:                s.lg,
		Metrics:               apiserver.NewMetrics(append(s.st.Collectors(), s.co.Collectors()...)...),
		ServiceCIDR:           s.cfg.ServiceCIDR,
		NodePortRange:         s.cfg.NodePortRange,
		Version:               s.cfg.Version,
		Snapshots:             s.snaps,

		CacheBytes:       s.cfg.WatchCacheBytes,
		WatchBufferBytes: s.cfg.WatchBufferBytes,
	})
	if err != nil {
		return err
	}
	s.api = api
	authz.Pods = auth.PodNodeFunc(api.PodNode)
	authz.NodePods = auth.NodePodsFunc(api.NodePods)
	if err := api.EnsureNamespaces(ctx); err != nil {
		return fmt.Errorf("creating the default namespaces: %w", err)
	}
	if err := api.EnsureAPIServices(ctx); err != nil {
		return fmt.Errorf("creating the local apiservices: %w", err)
	}
	if err := api.EnsurePriorityClasses(ctx); err != nil {
		return fmt.Errorf("creating the system priority classes: %w", err)
	}
	s.issuer = issuer
	return nil
}

// startNodeService builds the node service and the gRPC server agents
// reach it through.
func (s *instance) startNodeService() error {
	cfg := s.cfg
	nodeCfg := nodes.Config{
		Store: s.st, API: s.api, Authority: s.authority, ClusterCIDR: cfg.ClusterCIDR,
		Servers: s.servers, GracePeriod: cfg.NodeMonitorGracePeriod, Leading: s.co.Leading, Logger: s.lg,
		Tokens:           s.issuer,
		RegistrationRate: cfg.NodeRegistrationRate, RegistrationBurst: cfg.NodeRegistrationBurst,
	}
	if s.peers != nil {
		nodeCfg.Peers = s.peers
	}
	if !cfg.DisableAgent {
		if name, err := embeddedNodeName(cfg); err == nil {
			nodeCfg.ServerNode, nodeCfg.ServerNodeLabels = name, serverNodeLabels
		}
	}
	nodeSvc, err := nodes.New(nodeCfg)
	if err != nil {
		return err
	}
	s.nodeSvc = nodeSvc
	// Agents' gRPC calls arrive on the HTTPS port: on connections that
	// negotiated api.NodeProtocol, or told apart by their Content-Type
	// (listener.go).
	s.grpc = grpc.NewServer(grpcServerOptions(handshakenCredentials{})...)
	nodeSvc.RegisterWith(s.grpc)
	s.streams.Register(s.grpc)
	return nil
}

// serve runs every part until ctx ends or one fails: the HTTPS port, the
// API, the node service, the embedded agent, the membership and, while
// this server leads, the controllers and the scheduler.
func (s *instance) serve(ctx context.Context) error {
	cfg, lg, api := s.cfg, s.lg, s.api
	srv := newAPIServer(s.nodeSvc.Handler(s.grpc, api), readHeaderTimeout, idleTimeout, lg)
	https := newHTTPSPort(s.ln, s.authority.ServerTLSConfig(), s.grpc, srv, lg)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.nodeSvc.Run(gctx) })
	if !cfg.DisableAgent {
		g.Go(func() error {
			runEmbeddedAgent(gctx, cfg, s.authority.Token(), s.ln.Addr(), lg)
			return nil
		})
	}
	g.Go(https.Serve)
	setTokens := func() { s.authn.SetTokens(fixedTokens(s.authority)) }
	var tokens *tokenSync // nil when the server is alone
	if secrets, ok := coord.SecretsOf(s.st); ok {
		tokens = newTokenSync(secrets, s.authority, cfg.DataDir, setTokens, lg)
		g.Go(func() error { return tokens.Run(gctx) })
	}
	g.Go(func() error {
		return s.authority.Run(gctx, func() {
			setTokens()
			if tokens != nil {
				tokens.LocalChanged()
			}
		})
	})
	g.Go(func() error { return api.Run(gctx) })
	g.Go(func() error { return s.policy.Run(gctx) })
	g.Go(func() error { return s.snaps.Run(gctx) })
	if s.peers != nil {
		g.Go(func() error { return s.peers.Run(gctx, s.nodeSvc) })
	}
	// Controllers and the scheduler run on one server at a time.
	ctrl := controllers.Config{ClusterCA: s.authority.CAPEM(), ClientSigner: s.authority, Disabled: cfg.DisableControllers, ExtensionAuth: &controllers.ExtensionAuthentication{
		ClientCA:            s.authority.CAPEM(),
		RequestHeaderCA:     s.authority.FrontProxyCAPEM(),
		AllowedNames:        []string{pki.FrontProxyClientName},
		UsernameHeaders:     []string{auth.RemoteUserHeader},
		GroupHeaders:        []string{auth.RemoteGroupHeader},
		ExtraHeaderPrefixes: []string{auth.RemoteExtraHeaderPrefix},
	}}
	if p, err := netip.ParsePrefix(cfg.ServiceCIDR); err == nil {
		ctrl.ServiceCIDR = p.Masked().String()
	}
	if ip := serviceIP(cfg.ServiceCIDR, 1); ip != "" {
		ctrl.APIService = controllers.APIServiceOptions{ClusterIP: ip, Port: int32(s.ln.Addr().(*net.TCPAddr).Port), Servers: s.servers}
	}
	g.Go(func() error {
		return s.co.Lead(gctx, func(ctx context.Context) error {
			lead, lctx := errgroup.WithContext(ctx)
			lead.Go(func() error { return runControlLoops(lctx, cfg, ctrl, api, s.loopback, s.nodeSvc, lg) })
			if !cfg.DisableManifests {
				lead.Go(func() error { return runManifests(lctx, cfg, s.loopback, lg) })
			}
			return lead.Wait()
		})
	})
	g.Go(func() error {
		<-gctx.Done()
		api.SetReady(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		https.Shutdown(sctx)
		return nil
	})
	api.SetReady(true)
	lg.Info("api server ready", "address", s.ln.Addr().String(), "advertise", s.self, "kubeconfig", s.authority.KubeconfigPath())
	return g.Wait()
}

// fixedTokens is the bearer token table of the API: the join token (in
// full and its secret) for bootstrapping nodes, and the admin token.
func fixedTokens(authority *pki.Authority) map[string]auth.User {
	return map[string]auth.User{
		authority.Token():       auth.BootstrapUser,
		authority.TokenSecret(): auth.BootstrapUser,
		authority.AdminToken():  auth.AdminUser,
	}
}

// reconcilePolicy writes the bootstrap RBAC policy through the loopback
// and loads every role and binding into the authorizer, before the API
// serves any request that RBAC decides.
func reconcilePolicy(ctx context.Context, loopback *rest.Config, policy *rbac.Authorizer) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	if err := rbac.Reconcile(ctx, client.RbacV1()); err != nil {
		return fmt.Errorf("bootstrap RBAC policy: %w", err)
	}
	return policy.Load(ctx)
}

// openStore opens the etcd datastore when cfg names one, else the bbolt
// store under DATA/db.
func openStore(ctx context.Context, cfg Config, lg *slog.Logger) (datastore, error) {
	if cfg.DatastoreEndpoint != "" {
		return openEtcd(ctx, cfg, lg)
	}
	path := snapshot.StorePath(cfg.DataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	st, err := store.Open(path, store.Options{
		KeepRevisions: cfg.CompactionWindow, WindowBytes: cfg.WatchWindowBytes, Logger: lg,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	return st, nil
}

// runEmbeddedAgent runs this host's node in the server process, with its
// state under DATA/agent, until ctx ends. Its failure leaves the control
// plane running.
func runEmbeddedAgent(ctx context.Context, cfg Config, token string, addr net.Addr, lg *slog.Logger) {
	name, err := embeddedNodeName(cfg)
	if err != nil {
		lg.Error("embedded agent: no node name", "err", err)
		return
	}
	host := "127.0.0.1"
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		host = cfg.BindAddress
	}
	_, port, _ := net.SplitHostPort(addr.String())
	err = agent.Run(ctx, agent.Config{
		ServerURL: "https://" + net.JoinHostPort(host, port), Token: token,
		DataDir: filepath.Join(cfg.DataDir, "agent"), NodeName: name, NodeIP: embeddedNodeIP(cfg),
		HeartbeatInterval: cfg.HeartbeatInterval, Version: cfg.Version, Logger: lg,
		RestartBackoff: cfg.RestartBackoff, ClusterDNS: clusterDNS(cfg.ServiceCIDR),
		RegistriesConfig: cfg.RegistriesConfig,
	})
	if err != nil && ctx.Err() == nil {
		lg.Error("embedded agent stopped; the control plane keeps running", "err", err)
	}
}

// embeddedNodeName is the node name of the embedded agent: --node-name,
// else the host name in lower case.
func embeddedNodeName(cfg Config) (string, error) {
	if cfg.NodeName != "" {
		return cfg.NodeName, nil
	}
	h, err := os.Hostname()
	return strings.ToLower(h), err
}

// embeddedNodeIP is the InternalIP of the embedded agent's node: --node-ip,
// else a specific --bind-address, else the host's first global IPv4
// address (127.0.0.1 when it has none). The agent would find only the
// loopback address it reaches the server at.
func embeddedNodeIP(cfg Config) string {
	if cfg.NodeIP != "" {
		return cfg.NodeIP
	}
	return advertiseHost(Config{BindAddress: cfg.BindAddress})
}

// serverNodeLabels are the roles of the server's own node. The node
// service sets them: a node may not give itself a node-role label.
var serverNodeLabels = map[string]string{"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}

// clusterDNS returns the tenth address of the service CIDR, which the
// allocator keeps for cluster DNS, or "" (the agent's default) when the
// CIDR is unset or unusable.
func clusterDNS(serviceCIDR string) string { return serviceIP(serviceCIDR, 10) }

// serviceIP returns the nth address of the service CIDR (1: the API's
// kubernetes Service; 10: cluster DNS; both kept by the allocator), or ""
// when the CIDR is unset or unusable.
func serviceIP(serviceCIDR string, n int) string {
	p, err := netip.ParsePrefix(serviceCIDR)
	if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
		return ""
	}
	ip := p.Masked().Addr()
	for range n {
		ip = ip.Next()
	}
	return ip.String()
}

// controllerResync is how often the shared informers replay their caches
// to the controllers (the scheduler does not ask for replays).
const controllerResync = 10 * time.Minute

// runControlLoops runs the controllers and the scheduler until ctx ends.
// They share one informer factory, so each pod and node change is watched
// and decoded once for both. ctrl carries what the controllers learn from
// the server (the CA, the kubernetes Service); the rest of their
// configuration is filled here.
func runControlLoops(ctx context.Context, cfg Config, ctrl controllers.Config, api *apiserver.Server, loopback *rest.Config, nodeSvc *nodes.Service, lg *slog.Logger) error {
	loopback = fenced(ctx, loopback)
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, controllerResync)
	defer factory.Shutdown()
	sched, err := scheduler.New(client, factory, lg, scheduler.Options{Binder: fencedBind(ctx, api)})
	if err != nil {
		return err
	}
	work, wctx := errgroup.WithContext(ctx)
	work.Go(func() error {
		ctrl.Loopback, ctrl.Logger, ctrl.Heartbeats, ctrl.Factory, ctrl.ResyncPeriod = loopback, lg, nodeSvc, factory, controllerResync
		ctrl.NodeMonitorGracePeriod, ctrl.PodEvictionTimeout = cfg.NodeMonitorGracePeriod, cfg.PodEvictionTimeout
		ctrl.TerminatedPodGCThreshold = -1 // no limit
		if cfg.TerminatedPodGCThreshold > 0 {
			ctrl.TerminatedPodGCThreshold = cfg.TerminatedPodGCThreshold
		}
		return controllers.RunAll(wctx, ctrl)
	})
	work.Go(func() error { return sched.Run(wctx) })
	return work.Wait()
}

// runManifests applies the manifest files of DATA/server/manifests until
// ctx (the leadership) ends.
func runManifests(ctx context.Context, cfg Config, loopback *rest.Config, lg *slog.Logger) error {
	m, err := manifests.New(manifests.Config{
		Dir: manifests.Dir(cfg.DataDir), Loopback: fenced(ctx, loopback), Interval: cfg.ManifestsInterval, Logger: lg,
	})
	if err != nil {
		return err
	}
	return m.Run(ctx)
}

// advertiseHost is the address other servers and agents reach this server
// at: --advertise-address, else a specific --bind-address, else
// --node-ip, else the host's first global IPv4 address, else 127.0.0.1.
func advertiseHost(cfg Config) string {
	if cfg.AdvertiseAddress != "" {
		return cfg.AdvertiseAddress
	}
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		return cfg.BindAddress
	}
	if cfg.NodeIP != "" {
		return cfg.NodeIP
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

// publishInterval is how often a server publishes the heartbeats of its
// nodes for the others: a quarter of the grace period, at most 10 s (the
// kubelet's Lease renewal period), so a record is at most a quarter grace
// period stale when the leader reads it.
func publishInterval(cfg Config) time.Duration {
	grace := cfg.NodeMonitorGracePeriod
	if grace <= 0 {
		grace = nodes.DefaultGracePeriod
	}
	return min(10*time.Second, max(grace/4, 100*time.Millisecond))
}
