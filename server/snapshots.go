package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/store"
)

// snapshots saves the store's snapshots into DATA/server/snapshots, by
// hand through the API and on cfg.SnapshotSchedule.
type snapshots struct {
	dir, backend string
	src          *sealingSource
	sched        *snapshot.Scheduler // nil: no scheduled snapshots
}

// sealingSource is the store, whose snapshots carry the cluster's
// credentials sealed with the join token (snapshot.Sealer), so that a
// restore brings back the CA and the token with the objects.
type sealingSource struct {
	snapshot.Source
	// authority is set once the credentials are set up, before any
	// snapshot is taken.
	authority *pki.Authority
}

var _ snapshot.Sealer = (*sealingSource)(nil)

// SealedCredentials implements snapshot.Sealer.
func (s *sealingSource) SealedCredentials() ([]byte, error) {
	if s.authority == nil {
		return nil, nil
	}
	return pki.Seal(s.authority.Shared())
}

// newSnapshots returns the snapshots of st, or an error naming a bad
// --snapshot-schedule.
func newSnapshots(cfg Config, st store.Store, lg *slog.Logger) (*snapshots, error) {
	s := &snapshots{dir: snapshot.Dir(cfg.DataDir)}
	switch src := st.(type) {
	case *store.Bolt:
		s.backend, s.src = snapshot.BackendBolt, &sealingSource{Source: src}
	case *store.Etcd:
		s.backend, s.src = snapshot.BackendEtcd, &sealingSource{Source: src}
	default:
		return nil, fmt.Errorf("store %T takes no snapshots", st)
	}
	if cfg.SnapshotSchedule == "" {
		return s, nil
	}
	sched, err := snapshot.NewScheduler(s.dir, s.backend, cfg.SnapshotSchedule, cfg.SnapshotRetention, s.src, lg)
	if err != nil {
		return nil, fmt.Errorf("--snapshot-schedule: %w", err)
	}
	s.sched = sched
	return s, nil
}

// SaveSnapshot saves a snapshot named name now.
func (s *snapshots) SaveSnapshot(ctx context.Context, name string) (snapshot.Meta, error) {
	return snapshot.Save(ctx, s.dir, name, s.backend, time.Now(), s.src)
}

// Run takes the scheduled snapshots until ctx ends.
func (s *snapshots) Run(ctx context.Context) error {
	if s.sched == nil {
		return nil
	}
	return s.sched.Run(ctx)
}
