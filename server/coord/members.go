package coord

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/minik-dev/minik/server/nodes"
)

// Timing of the membership records.
const (
	// memberTTL is the lease of a server's records: a dead server drops
	// out of the server list (and its nodes' heartbeat records expire)
	// this long after its last renewal.
	memberTTL = 10 // seconds
	// pollEvery is how often the server list and other servers'
	// heartbeats are read back.
	pollEvery = time.Second
)

// peerBeat is a node's heartbeat as published by the server it is
// connected to.
type peerBeat struct {
	Server string    `json:"server"`
	Time   time.Time `json:"time"`
}

// LocalBeats is the node service as the membership uses it: the last
// heartbeat of each node connected to this server.
type LocalBeats interface {
	LocalHeartbeats() map[string]time.Time
}

// membership keeps this server's record in etcd, follows the other
// servers' records and shares the heartbeats of the nodes connected here.
// Publishing a node's heartbeat every publishEvery (not each one) keeps
// the store's log small: a 5,000-node cluster writes 500 records/s at the
// default 10 s, as many as kubelets renewing their Leases.
type membership struct {
	cli          *clientv3.Client
	prefix       string // the store's prefix
	self         string // advertised host:port
	servers      *nodes.ServerSet
	publishEvery time.Duration
	lg           *slog.Logger

	mu     sync.Mutex            // guards remote
	remote map[string]remoteBeat // node → newest heartbeat any server published
}

// remoteBeat is the newest published heartbeat of a node. It outlives its
// record (whose server may be gone) so that the node ages from that
// heartbeat on, not from whatever this server knew before.
type remoteBeat struct {
	peerBeat
	listed bool // its record is in etcd now
}

// forgetAfter is how long a node's heartbeat is remembered after its
// record went away.
const forgetAfter = time.Hour

func newMembership(cli *clientv3.Client, prefix, self string, servers *nodes.ServerSet, publishEvery time.Duration, lg *slog.Logger) *membership {
	return &membership{
		cli: cli, prefix: prefix, self: self, servers: servers, publishEvery: publishEvery,
		lg: lg.With("component", "membership"), remote: map[string]remoteBeat{},
	}
}

// LastHeartbeat returns the newest heartbeat of node any server
// published. Safe for concurrent use.
func (m *membership) LastHeartbeat(node string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.remote[node]
	return b.Time, ok
}

// Holder returns the server node last published a heartbeat through,
// the one holding its connection. Safe for concurrent use.
func (m *membership) Holder(node string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.remote[node]
	return b.Server, ok && b.listed && b.Server != ""
}

// Run keeps the membership until ctx ends; it re-registers after losing
// its lease (etcd unreachable for memberTTL).
func (m *membership) Run(ctx context.Context, beats LocalBeats) error {
	for ctx.Err() == nil {
		err := m.term(ctx, beats)
		if ctx.Err() != nil {
			break
		}
		m.lg.Warn("server record lost; registering again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (m *membership) term(ctx context.Context, beats LocalBeats) error {
	// Revoking the lease takes a stopping server off the list at once.
	lease, acks, release, err := keepLease(ctx, m.cli, memberTTL)
	if err != nil {
		return err
	}
	defer release()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, err := m.cli.Put(ctx, m.prefix+serversDir+m.self, m.self, clientv3.WithLease(lease)); err != nil {
		return err
	}
	m.lg.Info("server registered", "address", m.self)
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	publish := time.NewTicker(min(m.publishEvery, pollEvery))
	defer publish.Stop()
	published := map[string]time.Time{}
	m.poll(tctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-acks:
			if !ok {
				return errLeaseLost
			}
		case <-poll.C:
			m.poll(tctx)
		case <-publish.C:
			m.publish(tctx, lease, beats.LocalHeartbeats(), published)
		}
	}
}

// errLeaseLost ends a membership term whose lease etcd let expire.
var errLeaseLost = errors.New("server lease expired")

// poll reads the server list and the published heartbeats.
func (m *membership) poll(ctx context.Context) {
	resp, err := m.cli.Get(ctx, m.prefix+heartbeatsDir, clientv3.WithPrefix())
	if err != nil {
		m.lg.Debug("reading published heartbeats", "err", err)
	} else {
		listed := make(map[string]peerBeat, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			var b peerBeat
			if json.Unmarshal(kv.Value, &b) == nil {
				listed[strings.TrimPrefix(string(kv.Key), m.prefix+heartbeatsDir)] = b
			}
		}
		m.mergeBeats(listed, time.Now())
	}
	resp, err = m.cli.Get(ctx, m.prefix+serversDir, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		m.lg.Debug("reading the server list", "err", err)
		return
	}
	addrs := []string{m.self}
	for _, kv := range resp.Kvs {
		addrs = append(addrs, strings.TrimPrefix(string(kv.Key), m.prefix+serversDir))
	}
	slices.Sort(addrs)
	if m.servers.Set(slices.Compact(addrs)) {
		m.lg.Info("server list changed", "servers", m.servers.Addresses())
	}
}

// mergeBeats records the heartbeats listed in etcd now, keeping those of
// nodes whose record went away until forgetAfter.
func (m *membership) mergeBeats(listed map[string]peerBeat, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for node, old := range m.remote {
		if _, ok := listed[node]; ok {
			continue
		}
		if now.Sub(old.Time) > forgetAfter {
			delete(m.remote, node)
			continue
		}
		old.listed = false
		m.remote[node] = old
	}
	for node, b := range listed {
		if old, ok := m.remote[node]; ok && old.Time.After(b.Time) {
			b.Time = old.Time
		}
		m.remote[node] = remoteBeat{peerBeat: b, listed: true}
	}
}

// heardElsewhere reports whether another server published a heartbeat
// of node at t or later.
func (m *membership) heardElsewhere(node string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.remote[node]
	return ok && b.Server != m.self && !b.Time.Before(t)
}

// publish writes, on the server's lease (so that they vanish with the
// server), the heartbeat of each node first heard here at once and then
// every publishEvery. published, the last time written per node, forgets
// the nodes no longer heard here.
func (m *membership) publish(ctx context.Context, lease clientv3.LeaseID, beats map[string]time.Time, published map[string]time.Time) {
	for node := range published {
		if _, ok := beats[node]; !ok {
			delete(published, node)
		}
	}
	for node, t := range beats {
		last, ok := published[node]
		if ok && (!t.After(last) || t.Sub(last) < m.publishEvery) {
			continue
		}
		if m.heardElsewhere(node, t) {
			// The node has moved to another server since: a fresh term
			// here must not take its record back with an old heartbeat.
			continue
		}
		data, _ := json.Marshal(peerBeat{Server: m.self, Time: t})
		if _, err := m.cli.Put(ctx, m.prefix+heartbeatsDir+node, string(data), clientv3.WithLease(lease)); err != nil {
			m.lg.Debug("publishing a heartbeat", "node", node, "err", err)
			continue
		}
		published[node] = t
	}
}
