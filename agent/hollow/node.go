package hollow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	goruntime "runtime"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
)

// batchDelay is how long a node gathers pod reports before sending them.
const batchDelay = 100 * time.Millisecond

// node is one hollow node. Its state is owned by the goroutine in run.
type node struct {
	h      *hollow
	name   string
	lg     *slog.Logger
	client api.NodeClient
	nodeIP netip.Addr
	ips    *ipPool
	// session follows the chain of session messages.
	session nodeclient.Follower
	// reports sends pod reports; one per connection.
	reports *nodeclient.StatusSender
	pods    map[types.UID]*podState

	// Reports not yet accepted by the server, by namespace/name; kept
	// across reconnects.
	statuses   map[string]*api.PodStatus
	terminated map[string]*api.PodRef
}

// podState is a pod bound to the node.
type podState struct {
	key string
	ip  netip.Addr
}

func newNode(h *hollow, name string) *node {
	return &node{
		h: h, name: name, lg: h.lg.With("node", name),
		pods:     map[types.UID]*podState{},
		statuses: map[string]*api.PodStatus{}, terminated: map[string]*api.PodRef{},
	}
}

// run registers the node and keeps a session open until ctx ends.
func (n *node) run(ctx context.Context) error {
	type joined struct {
		client api.NodeClient
		config *api.NodeConfig
		close  func() error
	}
	j, err := retry(ctx, n.lg, func() (joined, error) {
		conn, cfg, err := n.h.register(ctx, n.name)
		if err != nil {
			return joined{}, err
		}
		return joined{api.NewNodeClient(conn), cfg, conn.Close}, nil
	})
	if err != nil {
		return err
	}
	defer j.close()
	cidr, err := netip.ParsePrefix(j.config.GetPodCidr())
	if err != nil {
		return fmt.Errorf("node %q: podCIDR %q from the server: %w", n.name, j.config.GetPodCidr(), err)
	}
	n.client, n.ips, n.nodeIP = j.client, newIPPool(cidr), cidr.Masked().Addr().Next()
	n.lg.Debug("hollow node registered", "podCIDR", cidr)
	return n.sessions(ctx)
}

// sessions keeps a session open, reconnecting with backoff.
func (n *node) sessions(ctx context.Context) error {
	b := nodeclient.NewBackoff()
	for {
		start := time.Now()
		err := n.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		b.Connected(start)
		n.lg.Debug("session ended; reconnecting", "err", err)
		if errors.Is(err, nodeclient.ErrGap) {
			continue
		}
		if err := b.Wait(ctx); err != nil {
			return nil
		}
	}
}

// connect runs one session: the stream of desired state, heartbeats and
// pod reports, all ended together by the first error.
func (n *node) connect(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Nothing notices a server that stopped answering before the
	// heartbeats start: the steps before are bounded.
	timeout := 3 * n.h.cfg.HeartbeatInterval
	rctx, rcancel := context.WithTimeout(ctx, timeout)
	err := n.reportNode(rctx)
	rcancel()
	if err != nil {
		return err
	}
	stream, err := nodeclient.OpenSession(ctx, n.client, &api.SessionRequest{LastRevision: n.session.Revision(), AcceptProtobuf: true, EndpointSlices: true}, timeout)
	if err != nil {
		return err
	}
	n.reports = nodeclient.NewStatusSender(ctx, n.client)
	defer n.reports.Close()
	errc := make(chan error, 2)
	msgs := make(chan *api.SessionMessage)
	wg.Go(func() { nodeclient.Receive(ctx, stream, msgs, errc) })
	wg.Go(func() { errc <- n.heartbeats(ctx) })
	return n.loop(ctx, msgs, errc)
}

// loop applies session messages and sends pod reports in batches.
func (n *node) loop(ctx context.Context, msgs <-chan *api.SessionMessage, errc <-chan error) error {
	var flush <-chan time.Time
	for {
		if flush == nil && len(n.statuses)+len(n.terminated) > 0 {
			flush = time.After(batchDelay)
		}
		select {
		case m := <-msgs:
			if err := n.apply(m); err != nil {
				return err
			}
		case <-flush:
			flush = nil
			if err := n.flush(ctx); err != nil {
				return err
			}
		case err := <-errc:
			return err
		}
	}
}

// reportNode creates or refreshes the Node: capacity, addresses, labels.
func (n *node) reportNode(ctx context.Context) error {
	cfg := n.h.cfg
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cfg.CPU),
		corev1.ResourceMemory: resource.MustParse(cfg.Memory),
		corev1.ResourcePods:   *resource.NewQuantity(int64(cfg.MaxPods), resource.DecimalSI),
	}
	st := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.nodeIP.String()},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
			ContainerRuntimeVersion: "hollow://0", KubeletVersion: "hollow", OSImage: "hollow",
		},
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	resp, err := n.client.UpdateStatus(ctx, &api.StatusUpdate{Node: &api.NodeReport{Status: data, Labels: map[string]string{
		"kubernetes.io/hostname": n.name, "kubernetes.io/os": goruntime.GOOS,
		"kubernetes.io/arch": goruntime.GOARCH, "minik.io/hollow": "true",
	}}})
	if err != nil {
		return fmt.Errorf("node report: %w", err)
	}
	if res := resp.GetNode(); res.GetCode() != 0 {
		return fmt.Errorf("node report refused: %s: %s", codes.Code(res.GetCode()), res.GetMessage())
	}
	return nil
}

// heartbeats tells the server the node is alive, at the interval it asks
// for or the configured one.
func (n *node) heartbeats(ctx context.Context) error {
	interval := n.h.cfg.HeartbeatInterval
	for {
		hctx, cancel := context.WithTimeout(ctx, interval)
		resp, err := n.client.Heartbeat(hctx, &api.HeartbeatRequest{Ready: true})
		cancel()
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		if ms := resp.GetIntervalMs(); ms > 0 {
			interval = time.Duration(ms) * time.Millisecond
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
