// Command storebench measures durable writes per second with 1 KiB values
// at several writer counts, for minik's store and for two raw bbolt
// baselines in the same run:
//
//   - bbolt-update: one db.Update (one fsync) per put;
//   - bbolt-group: a committer goroutine that drains every waiting put into
//     one transaction, the ceiling minik's store is compared with.
//
// Every case starts from an empty database in a fresh directory; all three
// open bbolt with the options minik uses. Usage:
//
//	go run ./store/cmd/storebench [-duration 3s] [-writers 1,16,64] [-value 1024]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/minik-dev/minik/store"
)

// putter is one way of making a durable write.
type putter interface {
	put(key string, value []byte) error
	close() error
}

type impl struct {
	name string
	open func(path string) (putter, error)
}

var impls = []impl{
	{"minik", openMinik},
	{"bbolt-update", openUpdate},
	{"bbolt-group", openGroup},
}

func main() {
	duration := flag.Duration("duration", 3*time.Second, "how long each case writes")
	writersFlag := flag.String("writers", "1,16,64", "comma-separated writer counts")
	valueSize := flag.Int("value", 1024, "value size in bytes")
	dir := flag.String("dir", "", "directory for the databases (default: a temporary one)")
	flag.Parse()
	if err := run(*duration, *writersFlag, *valueSize, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, writersFlag string, valueSize int, dir string) error {
	var counts []int
	for _, f := range strings.Split(writersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("writer count %q: not a positive number", f)
		}
		counts = append(counts, n)
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "storebench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	fmt.Printf("durable writes/s, %d-byte values, %v per case\n\n", valueSize, duration)
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "writers\tminik\tbbolt-update\tbbolt-group\tminik/group\t")
	for _, n := range counts {
		rates := make([]float64, len(impls))
		for i, im := range impls {
			path := filepath.Join(dir, fmt.Sprintf("%s-%d.db", im.name, n))
			rate, err := measure(im, path, n, duration, value)
			if err != nil {
				return fmt.Errorf("%s with %d writers: %w", im.name, n, err)
			}
			rates[i] = rate
			os.Remove(path)
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.2f\t\n", n, rates[0], rates[1], rates[2], rates[0]/rates[2])
	}
	return tw.Flush()
}

// measure runs writers goroutines putting new keys for duration and
// returns the acknowledged writes per second.
func measure(im impl, path string, writers int, duration time.Duration, value []byte) (float64, error) {
	p, err := im.open(path)
	if err != nil {
		return 0, err
	}
	var done atomic.Int64
	var stop atomic.Bool
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if errs[w] = p.put(fmt.Sprintf("/bench/%03d/%09d", w, i), value); errs[w] != nil {
					return
				}
				done.Add(1)
			}
		})
	}
	time.Sleep(duration)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if err := p.close(); err != nil {
		return 0, err
	}
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

type minik struct{ s *store.Bolt }

func openMinik(path string) (putter, error) {
	s, err := store.Open(path, store.Options{})
	return minik{s}, err
}

func (m minik) put(key string, value []byte) error {
	_, err := m.s.Create(context.Background(), key, value)
	return err
}

func (m minik) close() error { return m.s.Close() }

var bucket = []byte("kv")

// openBolt opens bbolt with the options minik's store uses.
func openBolt(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	return db, err
}

// update makes one transaction, and one fsync, per put.
type update struct{ db *bolt.DB }

func openUpdate(path string) (putter, error) {
	db, err := openBolt(path)
	return update{db}, err
}

func (u update) put(key string, value []byte) error {
	return u.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), value)
	})
}

func (u update) close() error { return u.db.Close() }
