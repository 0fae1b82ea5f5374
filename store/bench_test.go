package store_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minik-dev/minik/store"
)

// BenchmarkCreate measures durable 1 KiB creates from 1, 16 and 64
// concurrent writers. storebench compares the same with raw bbolt.
func BenchmarkCreate(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			value := make([]byte, 1024)
			var seq atomic.Int64
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for i := seq.Add(1); i <= int64(b.N); i = seq.Add(1) {
						if _, err := s.Create(context.Background(), fmt.Sprintf("/bench/%012d", i), value); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkSnapshot measures a snapshot of a store of 20,000 1 KiB
// objects into a file, alone and while 16 writers commit: writes/s is
// their durable throughput during the snapshots, which do not stop them.
// With snapshots=false each op is a 50 ms pause instead, for the writers'
// throughput without snapshots.
func BenchmarkSnapshot(b *testing.B) {
	for _, tc := range []struct {
		writers   int
		snapshots bool
	}{{0, true}, {16, false}, {16, true}} {
		writers := tc.writers
		b.Run(fmt.Sprintf("writers=%d/snapshots=%t", writers, tc.snapshots), func(b *testing.B) {
			dir := b.TempDir()
			s, err := store.Open(filepath.Join(dir, "bench.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			value := make([]byte, 1024)
			fill(b, s, 20000, value)
			out, err := os.Create(filepath.Join(dir, "snapshot"))
			if err != nil {
				b.Fatal(err)
			}
			defer out.Close()
			stop := make(chan struct{})
			var writes atomic.Int64
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := s.Update(context.Background(), fmt.Sprintf("/bench/%012d", (w*1000+i)%20000), value, 0); err != nil {
							b.Error(err)
							return
						}
						writes.Add(1)
					}
				})
			}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if !tc.snapshots {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if _, err := out.Seek(0, io.SeekStart); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Snapshot(context.Background(), out); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			close(stop)
			wg.Wait()
			fi, _ := out.Stat()
			b.SetBytes(fi.Size())
			if writers > 0 {
				b.ReportMetric(float64(writes.Load())/elapsed.Seconds(), "writes/s")
			}
		})
	}
}

// fill creates n keys /bench/%012d holding value, in concurrent batches.
func fill(b *testing.B, s store.Store, n int, value []byte) {
	b.Helper()
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := seq.Add(1) - 1; i < int64(n); i = seq.Add(1) - 1 {
				if _, err := s.Create(context.Background(), fmt.Sprintf("/bench/%012d", i), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
