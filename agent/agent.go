// Package agent runs a node: it joins the cluster, runs the pods the server
// binds to the node on containerd, and reports their status back. Every
// connection is opened by the agent (see api/node.proto).
//
// # Data directory
//
//	DataDir/
//	  tls/ca.crt, node.crt, node.key   trust and identity, kept across restarts
//	  node-password                    proves the node's name is its own when it registers again
//	  servers                          the API servers' addresses, for fail-over
//	  containerd/                      the agent's own containerd (without --containerd-socket)
//	  cni/                             IPAM leases and CNI cache
//	  images/*.tar                     imported at start
//	  registries.yaml                  registry mirrors (without --registries-config)
//	  pods/, sandboxes/, fifo/, ...    the runtime's files
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/agent/servicenet"
	"github.com/minik-dev/minik/agent/tunnel"
	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/network"
	"github.com/minik-dev/minik/runtime"
)

// DefaultHeartbeatInterval is how often the agent tells the server it is
// alive.
const DefaultHeartbeatInterval = 10 * time.Second

// Config is everything an agent is started with.
type Config struct {
	// ServerURL is the server's HTTPS address, "https://HOST:PORT".
	ServerURL string
	// Token is the join token ("K10<hash>::server:<secret>", or the
	// secret, which pins no CA).
	Token string
	// DataDir holds the agent's state.
	DataDir string
	// NodeName is the node's name; NodeIP its InternalIP (default: the
	// address this host sends from toward ServerURL, unless loopback).
	NodeName string
	NodeIP   string
	// ContainerdSocket is an existing containerd to use; "" starts one
	// under DataDir/containerd.
	ContainerdSocket string
	// RegistriesConfig is the registries file (see runtime.Registries);
	// "" reads DataDir/registries.yaml if it exists.
	RegistriesConfig string
	// HeartbeatInterval defaults to DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// RestartBackoff is the first CrashLoopBackOff delay, doubling to five
	// minutes (default 10s; tests shorten it).
	RestartBackoff time.Duration
	// Labels are added to the Node's labels. The server refuses a report
	// carrying labels a node may not set on itself (node-role.kubernetes.io/,
	// node-restriction.kubernetes.io/, other kubernetes.io and k8s.io
	// labels outside the kubelet's set, another node's hostname).
	Labels map[string]string
	// ClusterDNS is the cluster DNS address given to pods (default
	// DefaultClusterDNS), ClusterDomain its domain (DefaultClusterDomain).
	ClusterDNS    string
	ClusterDomain string
	// Version is reported as the node's kubelet version.
	Version string
	Logger  *slog.Logger
}

// agent is one running node.
type agent struct {
	cfg    Config
	lg     *slog.Logger
	client api.NodeClient
	// servers are the API servers the agent may connect to, kept in
	// DataDir/servers.
	servers *serverList
	// cert is the node's client certificate, renewed by renewCertificate.
	cert nodeCert
	rep  *reporter
	pods servicenet.PodSetter
	objs objectSetter     // nil: pods get no ConfigMaps, Secrets or Services
	net  *servicenet.Sync // nil: services not routed
}

// Run joins the cluster and runs the node until ctx ends. Pods keep
// running when Run returns: a restarted agent adopts them. Errors that
// retrying cannot fix (a token the server refuses, a CA that does not
// match the token) are returned at once and wrap ErrTokenRefused,
// ErrCAMismatch, ErrInvalidToken or ErrRegistrationRefused.
func Run(ctx context.Context, cfg Config) error {
	if cfg.ServerURL == "" || cfg.Token == "" || cfg.DataDir == "" || cfg.NodeName == "" {
		return errors.New("agent: ServerURL, Token, DataDir and NodeName must be set")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = routedNodeIP(cfg.ServerURL)
	}
	registries, err := LoadRegistries(cfg.DataDir, cfg.RegistriesConfig)
	if err != nil {
		return err
	}
	a := &agent{cfg: cfg, lg: cfg.Logger.With("component", "agent", "node", cfg.NodeName)}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	if a.servers, err = newServerList(cfg.ServerURL, filepath.Join(cfg.DataDir, ServersFile), a.lg); err != nil {
		return err
	}
	j, err := a.joinRetrying(ctx)
	if err != nil {
		return err
	}
	defer j.conn.Close()
	a.client = api.NewNodeClient(j.conn)
	podCIDR, err := netip.ParsePrefix(j.config.GetPodCidr())
	if err != nil {
		return fmt.Errorf("podCIDR %q from the server: %w", j.config.GetPodCidr(), err)
	}
	clusterCIDR, _ := netip.ParsePrefix(j.config.GetClusterCidr())

	g, gctx := errgroup.WithContext(ctx)
	address := cfg.ContainerdSocket
	if address == "" {
		d, err := runtime.StartContainerd(gctx, runtime.DaemonConfig{Dir: filepath.Join(cfg.DataDir, "containerd"), Logger: cfg.Logger})
		if err != nil {
			return fmt.Errorf("starting containerd: %w", err)
		}
		defer d.Wait()
		address = d.Address()
	}
	cni, err := network.NewCNI(network.Config{
		PodCIDR: podCIDR, ClusterCIDR: clusterCIDR, BridgeName: bridgeName(cfg.NodeName),
		DataDir: filepath.Join(cfg.DataDir, "cni"), Logger: cfg.Logger,
	})
	if err != nil {
		return err
	}
	ports := servicenet.NewHostPorts()
	rt, err := runtime.New(gctx, runtime.Config{
		Address: address, DataDir: cfg.DataDir, Namespace: "minik-" + cfg.NodeName,
		CgroupParent: "/minik-" + cfg.NodeName, Network: cniSetup{cni: cni, ports: ports},
		Registries: registries, Logger: cfg.Logger,
	})
	if err != nil {
		return err
	}
	defer rt.Close()
	a.rep = newReporter(a.client, a.nodeReport(func(ctx context.Context) string {
		v, err := rt.Client().Version(ctx)
		if err != nil {
			return "containerd://unknown"
		}
		return "containerd://" + v.Version
	}), a.lg)
	clusterDNS, err := cfg.clusterDNS()
	if err != nil {
		return err
	}
	a.net, err = servicenet.New(servicenet.Config{NodeName: cfg.NodeName, PodCIDR: podCIDR, ClusterCIDR: clusterCIDR,
		ClusterDNS: clusterDNS, ClusterDomain: cfg.ClusterDomain, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	mgr, err := pods.NewManager(pods.Config{
		ClusterDNS: []string{clusterDNS.String()}, ClusterDomain: cfg.ClusterDomain,
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, DataDir: cfg.DataDir, Allocatable: nodeCapacity(),
		Runtime: rt, Reporter: a.rep, Logger: cfg.Logger, BackoffBase: cfg.RestartBackoff,
		Tokens: podTokens{client: a.client}, Certificates: podCertificates{client: a.client},
	})
	if err != nil {
		return err
	}
	ports.Next = mgr
	a.pods, a.objs = ports, mgr
	if err := mgr.ImportImages(gctx, filepath.Join(cfg.DataDir, "images")); err != nil {
		a.lg.Warn("importing images", "err", err)
	}
	a.lg.Info("agent running", "podCIDR", podCIDR, "containerd", address)
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error { return a.runSessions(gctx) })
	g.Go(func() error { return a.followServers(gctx, a.client) })
	g.Go(func() error { return a.net.Run(gctx) })
	g.Go(func() error { return tunnel.Run(gctx, j.conn, cfg.NodeName, mgr, cfg.Logger) })
	g.Go(func() error { return a.renewCertificate(gctx, j.conn) })
	return g.Wait()
}

// joinRetrying joins through the first server of the list that answers,
// retrying with backoff while none can be reached; errors retrying cannot
// fix end it.
func (a *agent) joinRetrying(ctx context.Context) (*joined, error) {
	backoff := nodeclient.NewBackoff()
	for {
		var err error
		for _, u := range a.servers.urls() {
			var j *joined
			if j, err = a.join(ctx, u); err == nil {
				return j, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			if errors.Is(err, ErrTokenRefused) || errors.Is(err, ErrCAMismatch) || errors.Is(err, ErrInvalidToken) ||
				errors.Is(err, ErrRegistrationRefused) {
				// Final for the --join server. A kept address may
				// since serve something else: try the others.
				if a.servers.isSeed(u) {
					return nil, err
				}
				a.lg.Warn("a kept server refuses to let this node join; trying the others", "server", u, "err", err)
				continue
			}
			a.lg.Debug("cannot join through this server", "server", u, "err", err)
		}
		a.lg.Warn("cannot join yet; retrying", "server", a.cfg.ServerURL, "err", err)
		if err := backoff.Wait(ctx); err != nil {
			return nil, err
		}
	}
}

// bridgeName is a bridge name unique to the node, within the 15 bytes
// Linux allows.
func bridgeName(node string) string {
	sum := sha256.Sum256([]byte(node))
	return "minik-" + hex.EncodeToString(sum[:])[:8]
}

// cniSetup attaches sandboxes with the node's CNI network, mapping their
// hostPorts.
type cniSetup struct {
	cni   *network.CNI
	ports *servicenet.HostPorts
}

var _ runtime.NetworkSetup = cniSetup{}

// Setup attaches the sandbox (podID is the pod's UID).
func (n cniSetup) Setup(ctx context.Context, podID, netnsPath string) (string, error) {
	ip, err := n.cni.Setup(ctx, podID, netnsPath, n.ports.For(podID))
	if err != nil {
		return "", err
	}
	return ip.String(), nil
}

// Teardown detaches the sandbox.
func (n cniSetup) Teardown(ctx context.Context, podID, netnsPath string) error {
	return n.cni.Teardown(ctx, podID, netnsPath, nil)
}

// LoadRegistries reads the registries file of an agent with its state in
// dataDir: path, else dataDir/registries.yaml if that exists (none: no
// mirrors). A bad file's error wraps runtime.ErrInvalid and names the file
// and the key.
func LoadRegistries(dataDir, path string) (runtime.Registries, error) {
	if path != "" {
		return runtime.LoadRegistries(path)
	}
	r, err := runtime.LoadRegistries(filepath.Join(dataDir, runtime.RegistriesFile))
	if errors.Is(err, os.ErrNotExist) {
		return runtime.Registries{}, nil
	}
	return r, err
}
