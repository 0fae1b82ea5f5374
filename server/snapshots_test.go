package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/store/storetest"
)

func TestSnapshotsConfig(t *testing.T) {
	st := storetest.New(t)
	dataDir := t.TempDir()
	if _, err := newSnapshots(Config{DataDir: dataDir, SnapshotSchedule: "noon daily", SnapshotRetention: 5}, st, nil); err == nil ||
		!strings.Contains(err.Error(), "--snapshot-schedule") || !strings.Contains(err.Error(), "noon daily") {
		t.Errorf("newSnapshots(schedule %q) = %v, want an error naming the flag and value", "noon daily", err)
	}
	s, err := newSnapshots(Config{DataDir: dataDir, SnapshotSchedule: snapshot.DefaultSchedule, SnapshotRetention: 5}, st, nil)
	if err != nil {
		t.Fatalf("newSnapshots(default schedule) = %v", err)
	}
	m, err := s.SaveSnapshot(context.Background(), "by-hand")
	if err != nil {
		t.Fatalf("SaveSnapshot() = %v", err)
	}
	if want := filepath.Join(dataDir, "server", "snapshots", "by-hand"); m.Path != want || m.Backend != snapshot.BackendBolt {
		t.Errorf("SaveSnapshot() = %s (%s), want %s (%s)", m.Path, m.Backend, want, snapshot.BackendBolt)
	}
	// Without a schedule Run returns at once.
	off, err := newSnapshots(Config{DataDir: dataDir}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- off.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() without a schedule = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run() without a schedule did not return")
	}
}
