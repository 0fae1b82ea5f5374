package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minik-dev/minik/store"
)

const (
	crashDBEnv    = "MINIK_STORE_CRASH_DB"
	crashRoundEnv = "MINIK_STORE_CRASH_ROUND"
	crashWriters  = 64
	crashRounds   = 20
)

// crashAck is one write the child reported as acknowledged.
type crashAck struct {
	create bool // else an update of a counter key
	key    string
	rev    int64
	value  string
}

func crashValue(key string) []byte {
	return bytes.Repeat([]byte(key+";"), 16)
}

// TestMain runs the child half of TestCrash when TestCrash starts this
// binary with crashDBEnv set, and the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashDBEnv); path != "" {
		crashChild(path)
	}
	os.Exit(m.Run())
}

// crashChild writes with 64 clients until it is killed, printing each
// write once it returns.
func crashChild(path string) {
	round := os.Getenv(crashRoundEnv)
	s, err := store.Open(path, store.Options{CompactInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	for w := range crashWriters {
		go crashWriter(s, round, w)
	}
	select {} // until killed
}

func crashWriter(s *store.Bolt, round string, w int) {
	ctx := context.Background()
	counter := fmt.Sprintf("/crash/counter/%02d", w)
	for i := 0; ; i++ {
		k := fmt.Sprintf("/crash/r%s/%02d/%06d", round, w, i)
		rev, err := s.Create(ctx, k, crashValue(k))
		if err != nil {
			fmt.Fprintf(os.Stderr, "Create(%q) = %v\n", k, err)
			return
		}
		// One write(2) per line: a line is printed whole or not at all.
		fmt.Fprintf(os.Stdout, "ACK C %s %d\n", k, rev)
		if i%4 != 0 {
			continue
		}
		v := fmt.Sprintf("%s-%06d", round, i)
		rev, err = s.Update(ctx, counter, []byte(v), 0)
		if errors.Is(err, store.ErrNotFound) {
			rev, err = s.Create(ctx, counter, []byte(v))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "Update(%q) = %v\n", counter, err)
			return
		}
		fmt.Fprintf(os.Stdout, "ACK U %s %d %s\n", counter, rev, v)
	}
}

// TestCrash kills a writing child process at random moments and checks
// after each kill that every acknowledged write is in the reopened store
// and that revisions keep growing.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is not short")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0))
	var prevRev int64
	for round := range crashRounds {
		delay := time.Duration(20+rnd.IntN(250)) * time.Millisecond
		acks := runCrashChild(t, path, round, delay)
		prevRev = verifyCrash(t, path, round, acks, prevRev)
	}
}

// runCrashChild starts the child, kills it delay after its first
// acknowledgement and returns every acknowledgement it printed.
func runCrashChild(t *testing.T, path string, round int, delay time.Duration) []crashAck {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path, crashRoundEnv+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first, done := make(chan struct{}), make(chan struct{})
	var acks []crashAck
	var parseErr error
	go func() {
		defer close(done)
		acks, parseErr = readAcks(stdout, first)
	}()
	select {
	case <-first:
		time.Sleep(delay)
	case <-done:
	case <-time.After(waitTimeout):
	}
	cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("child's stdout not closed after kill")
	}
	cmd.Wait()
	if parseErr != nil {
		t.Fatalf("round %d: %v", round, parseErr)
	}
	if len(acks) == 0 {
		t.Fatalf("round %d: child acknowledged no write; stderr:\n%s", round, stderr.Bytes())
	}
	return acks
}

// readAcks parses the child's acknowledgements until EOF, closing first
// at the first one. A last line without its newline is ignored.
func readAcks(r interface{ Read([]byte) (int, error) }, first chan struct{}) ([]crashAck, error) {
	var acks []crashAck
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return acks, nil
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "ACK" {
			continue
		}
		a := crashAck{create: f[1] == "C", key: f[2]}
		if a.rev, err = strconv.ParseInt(f[3], 10, 64); err != nil {
			return nil, fmt.Errorf("bad line %q", line)
		}
		if !a.create && len(f) == 5 {
			a.value = f[4]
		}
		if acks = append(acks, a); len(acks) == 1 {
			close(first)
		}
	}
}

// verifyCrash reopens the store after round and checks it against the
// acknowledgements. It returns the current revision.
func verifyCrash(t *testing.T, path string, round int, acks []crashAck, prevRev int64) int64 {
	t.Helper()
	ctx := t.Context()
	s := open(t, path, store.Options{CompactInterval: -1})
	defer closeStore(t, s)
	cur, _ := s.CurrentRevision(ctx)
	counters := map[string]crashAck{} // last acknowledged update per key
	creates := 0
	for _, a := range acks {
		if a.rev <= prevRev || a.rev > cur {
			t.Fatalf("round %d: %q acknowledged at %d, want in (%d, %d]", round, a.key, a.rev, prevRev, cur)
		}
		if !a.create {
			if a.rev > counters[a.key].rev {
				counters[a.key] = a
			}
			continue
		}
		creates++
		kv, err := s.Get(ctx, a.key)
		if err != nil || kv.ModRevision != a.rev || kv.CreateRevision != a.rev || !bytes.Equal(kv.Value, crashValue(a.key)) {
			t.Fatalf("round %d: Get(%q) = revisions %d/%d, %v, want %d and its value", round, a.key, kv.CreateRevision, kv.ModRevision, err, a.rev)
		}
	}
	for k, a := range counters {
		kv, err := s.Get(ctx, k)
		switch {
		case err != nil:
			t.Fatalf("round %d: Get(%q) = %v", round, k, err)
		case kv.ModRevision < a.rev:
			t.Fatalf("round %d: Get(%q) at revision %d, want >= acknowledged %d", round, k, kv.ModRevision, a.rev)
		case kv.ModRevision == a.rev && string(kv.Value) != a.value,
			kv.ModRevision > a.rev && string(kv.Value) <= a.value:
			t.Fatalf("round %d: Get(%q) = %q at %d, acknowledged %q at %d", round, k, kv.Value, kv.ModRevision, a.value, a.rev)
		}
	}
	prefix := fmt.Sprintf("/crash/r%d/", round)
	if kvs, _, err := s.List(ctx, prefix, prevRev); prevRev > 0 && (err != nil || len(kvs) != 0) {
		t.Fatalf("round %d: List(%q, %d) = %d keys, %v, want none yet", round, prefix, prevRev, len(kvs), err)
	}
	if kvs, _, err := s.List(ctx, prefix, 0); err != nil || len(kvs) < creates {
		t.Fatalf("round %d: List(%q, 0) = %d keys, %v, want at least %d", round, prefix, len(kvs), err, creates)
	}
	t.Logf("round %d: %d acknowledged writes, revision %d", round, len(acks), cur)
	return cur
}
