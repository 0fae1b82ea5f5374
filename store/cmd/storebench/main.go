// Command storebench measures durable writes per second with 1 KiB values
// at several writer counts, for minik's store and for two raw bbolt
// baselines in the same run:
//
//   - bbolt-update: one db.Update (one fsync) per put;
//   - bbolt-group: a committer goroutine that drains every waiting put into
//     one transaction, the ceiling minik's store is compared with;
//   - etcd: minik's etcd store (store.Etcd) on a one-member etcd, started in
//     -dir from the etcd binary on PATH (or /usr/bin/etcd), or at the
//     -etcd URL; -etcd off leaves it out, as does a missing binary.
//
// Every measurement starts from an empty database; all three open bbolt
// with the options minik uses. Each case's time is split into -rounds
// slices taken in turn with the other implementations', so a change in
// machine load mid-run affects all three alike. Usage:
//
//	go run ./store/cmd/storebench [-duration 3s] [-rounds 3] [-writers 1,16,64]
//		[-value 1024] [-seq] [-dir DIR] [-etcd URL|off]
//
// By default each writer creates keys in a range of its own, so a commit
// touches about as many leaf pages as it has writes; -seq draws all keys
// from one sequence instead (one insertion point, the cheapest case).
// -dir /dev/shm takes the disk out and compares CPU cost alone. The
// header reports the median 4 KiB write+fsync time of the directory: a
// bbolt commit needs two fsyncs, which bounds the rate at any writer count.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

var sequential *bool

var impls = []impl{
	{"minik", openMinik},
	{"bbolt-update", openUpdate},
	{"bbolt-group", openGroup},
}

func main() {
	duration := flag.Duration("duration", 3*time.Second, "how long each case writes in total")
	rounds := flag.Int("rounds", 3, "slices each case's time is split into, taken in turn")
	writersFlag := flag.String("writers", "1,16,64", "comma-separated writer counts")
	valueSize := flag.Int("value", 1024, "value size in bytes")
	sequential = flag.Bool("seq", false, "keys from one global sequence (one insertion point) instead of one range per writer")
	dir := flag.String("dir", "", "directory for the databases (default: a temporary one)")
	etcd := flag.String("etcd", "", "etcd client URL to measure, or off (default: start the etcd binary if there is one)")
	flag.Parse()
	if err := run(*duration, *rounds, *writersFlag, *valueSize, *dir, *etcd); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, rounds int, writersFlag string, valueSize int, dir, etcd string) error {
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
	stopEtcd, err := addEtcd(etcd, dir)
	if err != nil {
		return err
	}
	defer stopEtcd()
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	fsync, err := fsyncLatency(dir, 100)
	if err != nil {
		return err
	}
	keys := "one key range per writer"
	if *sequential {
		keys = "keys from one global sequence"
	}
	fmt.Printf("durable writes/s, %d-byte values, %s, %v per case; median 4 KiB write+fsync %v\n\n",
		valueSize, keys, duration, fsync.Round(10*time.Microsecond))
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "writers\t")
	for _, im := range impls {
		fmt.Fprintf(tw, "%s\t", im.name)
	}
	fmt.Fprintln(tw, "minik/group\t")
	for _, n := range counts {
		rates, err := measureAll(dir, n, duration, max(rounds, 1), value)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t", n)
		for _, r := range rates {
			fmt.Fprintf(tw, "%.0f\t", r)
		}
		fmt.Fprintf(tw, "%.2f\t\n", rates[0]/rates[2])
	}
	return tw.Flush()
}

// measureAll returns the writes per second of every implementation with
// n writers, measured in rounds slices taken in turn.
func measureAll(dir string, n int, duration time.Duration, rounds int, value []byte) ([]float64, error) {
	writes := make([]int64, len(impls))
	elapsed := make([]time.Duration, len(impls))
	for r := range rounds {
		for i, im := range impls {
			path := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.db", im.name, n, r))
			w, d, err := measure(im, path, n, duration/time.Duration(rounds), value)
			os.Remove(path)
			if err != nil {
				return nil, fmt.Errorf("%s with %d writers: %w", im.name, n, err)
			}
			writes[i] += w
			elapsed[i] += d
		}
	}
	rates := make([]float64, len(impls))
	for i := range impls {
		rates[i] = float64(writes[i]) / elapsed[i].Seconds()
	}
	return rates, nil
}

// measure runs writers goroutines putting new keys for duration and
// returns how many writes were acknowledged and in how long.
func measure(im impl, path string, writers int, duration time.Duration, value []byte) (int64, time.Duration, error) {
	p, err := im.open(path)
	if err != nil {
		return 0, 0, err
	}
	var done, seq atomic.Int64
	var stop atomic.Bool
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("/bench/%03d/%09d", w, i)
				if *sequential {
					key = fmt.Sprintf("/bench/%012d", seq.Add(1))
				}
				if errs[w] = p.put(key, value); errs[w] != nil {
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
		return 0, 0, err
	}
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	return done.Load(), elapsed, nil
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

// fsyncLatency writes and fsyncs one 4 KiB block n times in dir and
// returns the median time, the floor under any durable commit.
func fsyncLatency(dir string, n int) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	times := make([]time.Duration, n)
	for i := range times {
		start := time.Now()
		if _, err := f.WriteAt(block, int64(i%16)*4096); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	return times[n/2], nil
}
