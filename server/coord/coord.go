package coord

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/store"
)

// Coordinator is how a server agrees with the other servers of its
// cluster. Its methods are safe for concurrent use.
type Coordinator interface {
	// Lead runs work whenever this server is the leader, until ctx ends;
	// work's ctx ends when the server stops leading. Lead returns work's
	// error when work fails while still leading, else nil.
	Lead(ctx context.Context, work Leading) error
	// Leading reports whether this server is the leader now.
	Leading() bool
	// Holder returns the server node is connected to, as that server
	// last published it; ok is false when no server is known to hold it.
	Holder(node string) (server string, ok bool)
	// Collectors returns the coordination metrics.
	Collectors() []prometheus.Collector
}

// Peers is the ability of a coordinator whose server shares its
// datastore with others: it keeps the server's record among them and
// shares the heartbeats of the nodes connected to each.
type Peers interface {
	// Run keeps this server's membership, publishing local's
	// heartbeats, until ctx ends. It returns nil.
	Run(ctx context.Context, local LocalBeats) error
	// LastHeartbeat returns the newest heartbeat of node any server
	// published.
	LastHeartbeat(node string) (time.Time, bool)
}

// SharedStore is the ability of a store that several servers share (the
// etcd store, store.Etcd): its client and the prefix of its keys.
type SharedStore interface {
	Client() *clientv3.Client
	Prefix() string
}

var _ SharedStore = (*store.Etcd)(nil)

// Options configure a coordinator.
type Options struct {
	// Self is this server's advertised host:port.
	Self string
	// Servers is the list of live servers the membership keeps.
	Servers *nodes.ServerSet
	// PublishEvery is how often a node's heartbeat is published for the
	// other servers.
	PublishEvery time.Duration
	Logger       *slog.Logger
}

// New returns the coordinator for a server on st: one that elects a
// leader and keeps the membership in etcd when st is a [SharedStore],
// else [Single].
func New(st any, opts Options) Coordinator {
	if s, ok := st.(SharedStore); ok {
		return NewEtcd(s.Client(), s.Prefix(), opts)
	}
	return NewSingle(opts.Self, opts.Logger)
}

// Single coordinates a server that is alone in its cluster: it always
// leads, and holds every node connected to it.
type Single struct{ *leadership }

var _ Coordinator = (*Single)(nil)

// NewSingle returns the coordinator of the one server at self.
func NewSingle(self string, lg *slog.Logger) *Single {
	return &Single{leadership: newLeadership(self, lg)}
}

// Lead implements Coordinator: it runs work as the leader until it
// returns.
func (s *Single) Lead(ctx context.Context, work Leading) error { return s.lead(ctx, work) }

// Holder implements Coordinator: no other server holds a node.
func (s *Single) Holder(string) (string, bool) { return "", false }

// Etcd coordinates the servers that share an etcd datastore: they elect
// a leader, list each other and publish their nodes' heartbeats under the
// store's prefix.
type Etcd struct {
	*elector
	*membership
}

var (
	_ Coordinator = (*Etcd)(nil)
	_ Peers       = (*Etcd)(nil)
)

// NewEtcd returns the coordinator of the server opts.Self among those
// sharing cli's keys under prefix.
func NewEtcd(cli *clientv3.Client, prefix string, opts Options) *Etcd {
	return &Etcd{
		elector:    newElector(cli, prefix+leaderKey, opts.Self, opts.Logger),
		membership: newMembership(cli, prefix, opts.Self, opts.Servers, opts.PublishEvery, opts.Logger),
	}
}
