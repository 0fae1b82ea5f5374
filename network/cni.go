package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/minik-dev/minik/internal/defaults"
)

// Defaults for [Config] fields left empty.
const (
	DefaultBridgeName  = "minik0"
	DefaultNetworkName = "minik"
	// podIfName is the interface name inside every pod.
	podIfName = "eth0"
)

// DefaultPluginDirs are searched for CNI plugin binaries when
// [Config.PluginDirs] is empty: Debian's package, then the upstream layout.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// DefaultClusterCIDR is the cluster CIDR assumed when [Config.ClusterCIDR]
// is unset and it contains the podCIDR.
var DefaultClusterCIDR = netip.MustParsePrefix(defaults.ClusterCIDR)

// Errors returned by this package; test with errors.Is.
var (
	// ErrNotFound is returned for a pod this node has no network state for.
	ErrNotFound = errors.New("network: not found")
	// ErrInvalidConfig is returned by constructors for unusable settings.
	ErrInvalidConfig = errors.New("network: invalid config")
)

// Config describes a node's pod network.
type Config struct {
	// PodCIDR is the IPv4 range allocated to this node, e.g. 10.42.1.0/24.
	// Required.
	PodCIDR netip.Prefix
	// ClusterCIDR covers every node's podCIDR; pod traffic to it is not
	// masqueraded. Defaults to [DefaultClusterCIDR] when that contains
	// PodCIDR, else to PodCIDR.
	ClusterCIDR netip.Prefix
	// BridgeName is the Linux bridge pods attach to, at most 15 bytes.
	// Agents sharing a network namespace need distinct names. Defaults to
	// [DefaultBridgeName].
	BridgeName string
	// NetworkName is the CNI network name. Defaults to [DefaultNetworkName].
	NetworkName string
	// PluginDirs are searched for plugin binaries. Defaults to
	// [DefaultPluginDirs].
	PluginDirs []string
	// DataDir holds host-local leases (DataDir/ipam) and libcni's result
	// cache (DataDir/cache). Required; one per agent.
	DataDir string
	// MTU of the bridge and veths. 0 takes the MTU of the link carrying the
	// default route, or 1500 without one.
	MTU int
	// Logger receives debug and lifecycle logs; nil discards them.
	Logger *slog.Logger
}

// PortMapping exposes a pod port on the node (a container's hostPort).
type PortMapping struct {
	HostPort      uint16
	ContainerPort uint16
	// Protocol is "tcp" (default), "udp" or "sctp".
	Protocol string
	// HostIP restricts the mapping to one node address; zero means all.
	HostIP netip.Addr
}

// CNI attaches pods to the node's bridge network. Its methods are safe for
// concurrent use with different pod IDs.
type CNI struct {
	cfg     Config
	cni     *libcni.CNIConfig
	list    *libcni.NetworkConfigList
	masq    masqChain
	lg      *slog.Logger
	masqMu  sync.Mutex // guards masqSet
	masqSet bool
}

// NewCNI validates cfg, fills defaults and renders the CNI configuration. It
// changes nothing on the host; the first Setup creates the bridge and the
// masquerade rules.
func NewCNI(cfg Config) (*CNI, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	conf, err := renderConfList(cfg.NetworkName, cfg.BridgeName, cfg.PodCIDR, cfg.MTU,
		filepath.Join(cfg.DataDir, "ipam"))
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &CNI{
		cfg:  cfg,
		cni:  libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.DataDir, "cache"), nil),
		list: list,
		masq: masqChain{bridge: cfg.BridgeName, podCIDR: cfg.PodCIDR, clusterCIDR: cfg.ClusterCIDR},
		lg:   lg.With("component", "cni", "bridge", cfg.BridgeName),
	}, nil
}

// complete checks c and fills in defaults.
func (c *Config) complete() error {
	var errs []error
	if !c.PodCIDR.IsValid() || !c.PodCIDR.Addr().Is4() || c.PodCIDR.Bits() > 30 {
		errs = append(errs, fmt.Errorf("podCIDR %q must be an IPv4 prefix of /30 or shorter: %w", c.PodCIDR, ErrInvalidConfig))
	}
	if c.DataDir == "" {
		errs = append(errs, fmt.Errorf("dataDir must be set: %w", ErrInvalidConfig))
	}
	if c.BridgeName == "" {
		c.BridgeName = DefaultBridgeName
	}
	if len(c.BridgeName) > 15 {
		errs = append(errs, fmt.Errorf("bridgeName %q is longer than 15 bytes: %w", c.BridgeName, ErrInvalidConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.PodCIDR = c.PodCIDR.Masked()
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = c.PodCIDR
		if DefaultClusterCIDR.Contains(c.PodCIDR.Addr()) && DefaultClusterCIDR.Bits() <= c.PodCIDR.Bits() {
			c.ClusterCIDR = DefaultClusterCIDR
		}
	}
	if c.NetworkName == "" {
		c.NetworkName = DefaultNetworkName
	}
	if len(c.PluginDirs) == 0 {
		c.PluginDirs = DefaultPluginDirs
	}
	if c.MTU == 0 {
		c.MTU = defaultRouteMTU()
	}
	return nil
}

// Setup attaches the pod whose network namespace is at netnsPath to the
// bridge and maps its host ports. It returns the pod's IPv4 address. On
// error it undoes what the plugins did. For a pod already set up in the
// same namespace it returns the address it has and changes nothing (a
// retry must not tear a working pod down); set up in another namespace,
// the old attachment is torn down first. All state is keyed by podID, so
// a sandbox ID (new for each sandbox) suits it better than a pod UID.
func (c *CNI) Setup(ctx context.Context, podID, netnsPath string, ports []PortMapping) (netip.Addr, error) {
	if err := c.ensureMasq(ctx); err != nil {
		return netip.Addr{}, err
	}
	rt := c.runtimeConf(podID, netnsPath, ports)
	if ip, done, err := c.reuse(ctx, rt); done || err != nil {
		return ip, err
	}
	res, err := c.cni.AddNetworkList(ctx, c.list, rt)
	if err != nil {
		if derr := c.cni.DelNetworkList(context.WithoutCancel(ctx), c.list, rt); derr != nil {
			c.lg.Warn("undo failed pod network setup", "pod", podID, "err", derr)
		}
		return netip.Addr{}, fmt.Errorf("pod %q network setup: %w", podID, err)
	}
	ip, err := podAddr(res)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("pod %q: %w", podID, err)
	}
	c.lg.Debug("pod network set up", "pod", podID, "ip", ip)
	return ip, nil
}

// reuse handles a pod that is already set up: done is true when the
// existing attachment (in rt's namespace) stands and ip is its address.
func (c *CNI) reuse(ctx context.Context, rt *libcni.RuntimeConf) (ip netip.Addr, done bool, err error) {
	a, ok, err := c.readAttachment(ctx, c.cachePath(rt.ContainerID))
	if err != nil || !ok {
		return netip.Addr{}, false, err
	}
	if a.NetNSPath == rt.NetNS && a.IP.IsValid() {
		return a.IP, true, nil
	}
	return netip.Addr{}, false, c.Teardown(ctx, rt.ContainerID, a.NetNSPath, nil)
}

// Teardown detaches the pod, removes its host port mappings and releases its
// IP. It is idempotent, and works when the network namespace is already gone.
// Without ports it uses the mappings remembered from Setup.
func (c *CNI) Teardown(ctx context.Context, podID, netnsPath string, ports []PortMapping) error {
	if netnsPath != "" {
		if _, err := os.Stat(netnsPath); errors.Is(err, fs.ErrNotExist) {
			netnsPath = ""
		}
	}
	rt := c.runtimeConf(podID, netnsPath, ports)
	if len(ports) == 0 {
		if _, cached, err := c.cni.GetNetworkListCachedConfig(c.list, rt); err == nil && cached != nil {
			rt.CapabilityArgs = cached.CapabilityArgs
		}
	}
	if err := c.cni.DelNetworkList(ctx, c.list, rt); err != nil {
		return fmt.Errorf("pod %q network teardown: %w", podID, err)
	}
	c.lg.Debug("pod network torn down", "pod", podID)
	return nil
}

// PodIP returns the address Setup gave the pod, or ErrNotFound.
func (c *CNI) PodIP(ctx context.Context, podID string) (netip.Addr, error) {
	res, err := c.cni.GetNetworkListCachedResult(c.list, c.runtimeConf(podID, "", nil))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("pod %q: %w", podID, err)
	}
	if res == nil {
		return netip.Addr{}, fmt.Errorf("pod %q: %w", podID, ErrNotFound)
	}
	return podAddr(res)
}

// Status reports whether every plugin in the configuration is installed and
// speaks the configured CNI version.
func (c *CNI) Status(ctx context.Context) error {
	if _, err := c.cni.ValidateNetworkList(ctx, c.list); err != nil {
		return fmt.Errorf("cni plugins in %q: %w", c.cfg.PluginDirs, err)
	}
	return nil
}

// Config returns the configuration with defaults filled in.
func (c *CNI) Config() Config { return c.cfg }

// ConfList returns the rendered CNI network configuration list (JSON).
// The caller must not modify it.
func (c *CNI) ConfList() []byte { return c.list.Bytes }

func (c *CNI) runtimeConf(podID, netnsPath string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: podID, NetNS: netnsPath, IfName: podIfName}
	if len(ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": cniPortMappings(ports)}
	}
	return rt
}

// cniPortMappings converts ports to the portMappings capability format.
func cniPortMappings(ports []PortMapping) []map[string]any {
	out := make([]map[string]any, 0, len(ports))
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		m := map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": proto}
		if p.HostIP.IsValid() {
			m["hostIP"] = p.HostIP.String()
		}
		out = append(out, m)
	}
	return out
}

// podAddr returns the first IPv4 address the result assigns inside the pod.
func podAddr(res types.Result) (netip.Addr, error) {
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cni result: %w", err)
	}
	for _, ipc := range cur.IPs {
		if ipc.Interface != nil && *ipc.Interface < len(cur.Interfaces) &&
			cur.Interfaces[*ipc.Interface].Sandbox == "" {
			continue // an address on the host side
		}
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok && a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("cni result has no pod IPv4 address: %w", ErrNotFound)
}

// ensureMasq installs the masquerade chain once per CNI.
func (c *CNI) ensureMasq(ctx context.Context) error {
	c.masqMu.Lock()
	defer c.masqMu.Unlock()
	if c.masqSet {
		return nil
	}
	x, err := NewIPTables(IPTablesConfig{})
	if err != nil {
		return err
	}
	if err := c.masq.ensure(ctx, x); err != nil {
		return err
	}
	c.masqSet = true
	return nil
}

// Cleanup removes what the CNI created on the node: the masquerade chain,
// the bridge, and the portmap plugin's shared chains when no pod uses them. Tear pods down first; their leases and cache entries stay in
// DataDir otherwise.
func (c *CNI) Cleanup(ctx context.Context) error {
	c.masqMu.Lock()
	defer c.masqMu.Unlock()
	var errs []error
	if x, err := NewIPTables(IPTablesConfig{}); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, c.masq.remove(x.ipt), removeIdlePortmap(x.ipt))
	}
	c.masqSet = false
	if l, err := netlink.LinkByName(c.cfg.BridgeName); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("bridge %q: %w", c.cfg.BridgeName, err))
		}
	}
	return errors.Join(errs...)
}
