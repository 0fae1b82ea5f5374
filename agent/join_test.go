package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/minik-dev/minik/api/nodeclient"
)

// TestNodeNameBound: a name registered by one agent is refused to an
// agent with another data directory, and its owner registers again with
// its certificate even when its password is lost.
func TestNodeNameBound(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	a := newAgent(t, c, c.ca.Token(), dir)
	j, err := a.join(ctxT(t), c.url)
	if err != nil {
		t.Fatalf("join() = %v", err)
	}
	j.conn.Close()
	fi, err := os.Stat(filepath.Join(dir, PasswordFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node password file: %v, mode %v; want mode 0600", err, fi.Mode().Perm())
	}

	if _, err := newAgent(t, c, c.ca.Token(), t.TempDir()).join(ctxT(t), c.url); !errors.Is(err, ErrRegistrationRefused) {
		t.Errorf("join() of n1 from another data directory = %v, want %v", err, ErrRegistrationRefused)
	}

	if err := os.Remove(filepath.Join(dir, PasswordFile)); err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "tls")
	roots, err := nodeclient.TrustCA(ctxT(t), c.url, c.ca.Token(), tlsDir, a.lg)
	if err != nil {
		t.Fatal(err)
	}
	j, err = a.register(ctxT(t), c.url, tlsDir, roots)
	if err != nil {
		t.Fatalf("register() with the kept certificate and a new password = %v, want nil", err)
	}
	j.conn.Close()
}
