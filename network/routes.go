package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultRouteProtocol tags the routes a [Router] installs (the rtm_protocol
// field, shown by `ip route` as "proto 211"). It is not among the numbers
// in iproute2's rt_protos, so no routing daemon claims it.
const DefaultRouteProtocol = 211

// Route sends a remote node's pod range via that node's IP (host-gw style:
// the node IP must be on a directly attached network).
type Route struct {
	PodCIDR netip.Prefix
	NodeIP  netip.Addr
}

// RouterConfig configures a [Router].
type RouterConfig struct {
	// Protocol marks routes as owned; 0 means [DefaultRouteProtocol].
	// Agents sharing a network namespace need distinct numbers.
	Protocol int
	// Table is the routing table; 0 means main.
	Table int
	// NetNSPath selects the network namespace to manage; empty means the
	// caller's.
	NetNSPath string
	// Logger receives route changes; nil discards them.
	Logger *slog.Logger
}

// Router keeps the routes to other nodes' pods. Its methods are safe for
// concurrent use, but concurrent SyncRoutes calls race to the last word.
type Router struct {
	h     *netlink.Handle
	proto netlink.RouteProtocol
	table int
	lg    *slog.Logger
}

// NewRouter opens a netlink handle in the configured namespace. Close it
// when done.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if cfg.Protocol == 0 {
		cfg.Protocol = DefaultRouteProtocol
	}
	if cfg.Protocol < 5 || cfg.Protocol > 255 { // 0-4 belong to the kernel
		return nil, fmt.Errorf("route protocol %d must be in 5..255: %w", cfg.Protocol, ErrInvalidConfig)
	}
	if cfg.Table == 0 {
		cfg.Table = unix.RT_TABLE_MAIN
	}
	h, err := newNetlinkHandle(cfg.NetNSPath)
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Router{h: h, proto: netlink.RouteProtocol(cfg.Protocol), table: cfg.Table,
		lg: lg.With("component", "routes")}, nil
}

func newNetlinkHandle(nsPath string) (*netlink.Handle, error) {
	if nsPath == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("netns %q: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %q: %w", nsPath, err)
	}
	return h, nil
}

// Close releases the netlink handle. Routes stay.
func (r *Router) Close() { r.h.Close() }

// SyncRoutes makes the owned routes equal to routes: missing ones are added,
// changed ones replaced, and owned routes not listed are deleted. Routes of
// other protocols are never deleted, but one with the same destination in
// the table is replaced. Leave the node's own podCIDR out. It keeps going
// past a failing route and returns all errors joined.
func (r *Router) SyncRoutes(ctx context.Context, routes []Route) error {
	want, err := r.desired(routes)
	if err != nil {
		return err
	}
	have, err := r.owned()
	if err != nil {
		return err
	}
	var errs []error
	for dst, gw := range want {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if have[dst] == gw {
			continue
		}
		if err := r.h.RouteReplace(r.netlinkRoute(Route{dst, gw})); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", dst, gw, err))
			continue
		}
		r.lg.Info("route set", "dst", dst, "via", gw)
	}
	for dst, gw := range have {
		if _, ok := want[dst]; ok {
			continue
		}
		if err := r.h.RouteDel(r.netlinkRoute(Route{dst, gw})); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", dst, gw, err))
			continue
		}
		r.lg.Info("route deleted", "dst", dst, "via", gw)
	}
	return errors.Join(errs...)
}

// Routes returns the owned routes, sorted by destination. The caller owns
// the slice.
func (r *Router) Routes(ctx context.Context) ([]Route, error) {
	have, err := r.owned()
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(have))
	for dst, gw := range have {
		out = append(out, Route{dst, gw})
	}
	slices.SortFunc(out, func(a, b Route) int { return a.PodCIDR.Addr().Compare(b.PodCIDR.Addr()) })
	return out, nil
}

// desired validates routes and indexes them by destination.
func (r *Router) desired(routes []Route) (map[netip.Prefix]netip.Addr, error) {
	want := make(map[netip.Prefix]netip.Addr, len(routes))
	var errs []error
	for i, rt := range routes {
		switch {
		case !rt.PodCIDR.IsValid() || !rt.PodCIDR.Addr().Is4():
			errs = append(errs, fmt.Errorf("routes[%d].podCIDR %q must be an IPv4 prefix: %w", i, rt.PodCIDR, ErrInvalidConfig))
		case !rt.NodeIP.Is4():
			errs = append(errs, fmt.Errorf("routes[%d].nodeIP %q must be an IPv4 address: %w", i, rt.NodeIP, ErrInvalidConfig))
		case want[rt.PodCIDR.Masked()].IsValid() && want[rt.PodCIDR.Masked()] != rt.NodeIP:
			errs = append(errs, fmt.Errorf("routes[%d].podCIDR %s is routed to two nodes: %w", i, rt.PodCIDR, ErrInvalidConfig))
		default:
			want[rt.PodCIDR.Masked()] = rt.NodeIP
		}
	}
	return want, errors.Join(errs...)
}

// owned lists the table's routes tagged with the router's protocol.
func (r *Router) owned() (map[netip.Prefix]netip.Addr, error) {
	list, err := r.h.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Table: r.table, Protocol: r.proto},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	have := make(map[netip.Prefix]netip.Addr, len(list))
	for _, rt := range list {
		if rt.Dst == nil {
			continue
		}
		dst, ok := prefixFromIPNet(rt.Dst)
		gw, gok := netip.AddrFromSlice(rt.Gw)
		if ok && gok {
			have[dst] = gw.Unmap()
		}
	}
	return have, nil
}

func (r *Router) netlinkRoute(rt Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: rt.PodCIDR.Addr().AsSlice(), Mask: net.CIDRMask(rt.PodCIDR.Bits(), 32)},
		Gw:       rt.NodeIP.AsSlice(),
		Protocol: r.proto,
		Table:    r.table,
	}
}

func prefixFromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
