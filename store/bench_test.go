package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

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
