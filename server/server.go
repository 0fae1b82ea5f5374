// Package server runs minik's control plane: the store, the API server,
// the controllers, the scheduler and the node service.
//
// Servers that share an etcd datastore form one control plane: any of them
// serves the API; the controllers and the scheduler run on an elected
// leader (leader.go); the first server keeps the cluster's CA and secrets
// in the datastore for the others (bootstrap.go); each keeps a
// lease-backed record there, learns the others' addresses for the agents
// and shares its nodes' heartbeats (cluster.go); logs and exec go to the
// server a node is connected to (streams.go).
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

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/agent"
	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/controllers"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/rbac"
	"github.com/minik-dev/minik/server/scheduler"
	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/server/streaming"
	"github.com/minik-dev/minik/store"
)

// shutdownGrace bounds how long open requests may take once the server is
// asked to stop.
const shutdownGrace = 5 * time.Second

// Run runs the control plane until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := openStore(ctx, cfg, lg)
	if err != nil {
		return err
	}
	defer st.Close()
	var (
		cli    *clientv3.Client // set when servers share an etcd datastore
		prefix string
	)
	if e, ok := st.(*store.Etcd); ok {
		cli, prefix = e.Client(), e.Prefix()
	}
	advertiseHost := advertiseHost(cfg)
	authority, err := bootstrap(ctx, cfg, cli, prefix, advertiseHost, lg)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	addr := net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	self := net.JoinHostPort(advertiseHost, port)
	leader := newElector(cli, prefix+leaderKey, self, lg)
	servers := nodes.NewServerSet(self)
	var members *membership
	if cli != nil {
		members = newMembership(cli, prefix, self, servers, publishInterval(cfg), lg)
	}

	policy := rbac.New(st, lg)
	authz := &auth.Authorizer{Policy: policy}
	streams := streaming.NewServer(lg, nil)
	var podStreams apiserver.PodStreamer = streams
	if members != nil {
		podStreams = newPodStreamRouter(streams, members, self, authority, lg)
	}
	issuer, err := serviceaccount.NewIssuer(authority.ServiceAccountKey(), serviceaccount.DefaultIssuer)
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
	api, err = apiserver.New(apiserver.Config{
		Store: st,
		Authenticator: auth.NewAuthenticator(authority.ClientCAPool(), map[string]auth.User{
			authority.Token():       auth.BootstrapUser,
			authority.TokenSecret(): auth.BootstrapUser,
			authority.AdminToken():  auth.AdminUser,
		}).WithTokenAuthenticator(saTokens, saTokens.Audiences()),
		ServiceAccounts: issuer,
		Authorizer:      authz,
		Rules:           policy,
		PodStreams:      podStreams,
		Logger:          lg,
		Metrics:         apiserver.NewMetrics(append(st.Collectors(), leader.Collectors()...)...),
		ServiceCIDR:     cfg.ServiceCIDR,
		NodePortRange:   cfg.NodePortRange,
		Version:         cfg.Version,

		CacheBytes:       cfg.WatchCacheBytes,
		WatchBufferBytes: cfg.WatchBufferBytes,
	})
	if err != nil {
		return err
	}
	authz.Pods = auth.PodNodeFunc(api.PodNode)
	authz.NodePods = auth.NodePodsFunc(api.NodePods)
	if err := api.EnsureNamespaces(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("creating the default namespaces: %w", err)
	}
	// In-process components (node service, controllers, scheduler) use
	// the API over the loopback; it must serve before agents can connect.
	loopCtx, stopLoopback := context.WithCancel(ctx)
	defer stopLoopback()
	loopback := api.ServeLoopback(loopCtx)
	if err := reconcilePolicy(ctx, loopback, policy); err != nil {
		ln.Close()
		return err
	}
	nodeCfg := nodes.Config{
		Store: st, API: api, Authority: authority, ClusterCIDR: cfg.ClusterCIDR,
		Servers: servers, GracePeriod: cfg.NodeMonitorGracePeriod, Leading: leader.Leading, Logger: lg,
		Tokens:           issuer,
		RegistrationRate: cfg.NodeRegistrationRate, RegistrationBurst: cfg.NodeRegistrationBurst,
	}
	if members != nil {
		nodeCfg.Peers = members
	}
	if !cfg.DisableAgent {
		if name, err := embeddedNodeName(cfg); err == nil {
			nodeCfg.ServerNode, nodeCfg.ServerNodeLabels = name, serverNodeLabels
		}
	}
	nodeSvc, err := nodes.New(nodeCfg)
	if err != nil {
		ln.Close()
		return err
	}
	// Agents' gRPC calls arrive on the HTTPS port: on connections that
	// negotiated api.NodeProtocol, or told apart by their Content-Type
	// (listener.go).
	gs := grpc.NewServer(grpcServerOptions(handshakenCredentials{})...)
	nodeSvc.RegisterWith(gs)
	streams.Register(gs)
	srv := newAPIServer(nodeSvc.Handler(gs, api), readHeaderTimeout, idleTimeout, lg)
	https := newHTTPSPort(ln, authority.ServerTLSConfig(), gs, srv, lg)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return nodeSvc.Run(gctx) })
	if !cfg.DisableAgent {
		g.Go(func() error {
			runEmbeddedAgent(gctx, cfg, authority.Token(), ln.Addr(), lg)
			return nil
		})
	}
	g.Go(https.Serve)
	g.Go(func() error { return api.Run(gctx) })
	g.Go(func() error { return policy.Run(gctx) })
	if members != nil {
		g.Go(func() error { return members.Run(gctx, nodeSvc) })
	}
	// Controllers and the scheduler run on one server at a time.
	ctrl := controllers.Config{ClusterCA: authority.CAPEM()}
	if ip := serviceIP(cfg.ServiceCIDR, 1); ip != "" {
		ctrl.APIService = controllers.APIServiceOptions{ClusterIP: ip, Port: int32(ln.Addr().(*net.TCPAddr).Port), Servers: servers}
	}
	g.Go(func() error {
		return leader.Run(gctx, func(ctx context.Context) error {
			return runControlLoops(ctx, cfg, ctrl, api, loopback, nodeSvc, lg)
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
	lg.Info("api server ready", "address", ln.Addr().String(), "advertise", self, "kubeconfig", authority.KubeconfigPath())
	return g.Wait()
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
	dir := filepath.Join(cfg.DataDir, "db")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{
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
		DataDir: filepath.Join(cfg.DataDir, "agent"), NodeName: name, NodeIP: cfg.NodeIP,
		HeartbeatInterval: cfg.HeartbeatInterval, Version: cfg.Version, Logger: lg,
		RestartBackoff: cfg.RestartBackoff, ClusterDNS: clusterDNS(cfg.ServiceCIDR),
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
		return controllers.RunAll(wctx, ctrl)
	})
	work.Go(func() error { return sched.Run(wctx) })
	return work.Wait()
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
