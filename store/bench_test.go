package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/minik-dev/minik/store"
)

// BenchmarkCreate measures durable 1 KiB creates from 64 concurrent
// writers; storebench compares the figure with raw bbolt.
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
			b.SetParallelism((writers + 1) / 2)
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("/bench/%09d", seq.Add(1))
					if _, err := s.Create(context.Background(), key, value); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
