package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

// Defaults of the server's snapshot flags.
const (
	DefaultSchedule  = "0 */12 * * *"
	DefaultRetention = 5
)

// ScheduledPrefix starts the names of scheduled snapshots; retention
// prunes only those, never the ones taken by hand.
const ScheduledPrefix = "scheduled-"

// Scheduler takes snapshots on a cron schedule and keeps the newest
// Retention of them.
type Scheduler struct {
	dir, backend string
	schedule     cron.Schedule
	retention    int
	src          Source
	lg           *slog.Logger
}

// NewScheduler returns a Scheduler that saves snapshots of src (a store
// of the given backend) into dir at the times of spec, a standard
// five-field cron expression in UTC, and keeps the newest retention
// scheduled ones (at least one). A bad spec is an error naming it.
func NewScheduler(dir, backend, spec string, retention int, src Source, lg *slog.Logger) (*Scheduler, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("snapshot schedule %q: %w", spec, err)
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		dir: dir, backend: backend, schedule: sched, retention: max(retention, 1), src: src,
		lg: lg.With("component", "snapshot"),
	}, nil
}

// Run takes the scheduled snapshots until ctx ends. A failed snapshot is
// logged and the next one is still taken.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		now := time.Now().UTC()
		next := s.schedule.Next(now)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if _, err := s.Take(ctx, next); err != nil && ctx.Err() == nil {
			s.lg.Error("scheduled snapshot failed", "err", err)
		}
	}
}

// Take saves the scheduled snapshot of time at, then prunes the
// scheduled ones past the retention.
func (s *Scheduler) Take(ctx context.Context, at time.Time) (Meta, error) {
	name := ScheduledPrefix + at.UTC().Format("20060102-150405")
	m, err := Save(ctx, s.dir, name, s.backend, at, s.src)
	if err != nil {
		return Meta{}, err
	}
	s.lg.Info("snapshot saved", "name", m.Name, "revision", m.Revision, "size", m.Size)
	deleted, err := Prune(s.dir, ScheduledPrefix, s.retention)
	for _, d := range deleted {
		s.lg.Info("snapshot pruned", "name", d.Name)
	}
	if err != nil {
		return m, fmt.Errorf("pruning snapshots: %w", err)
	}
	return m, nil
}
