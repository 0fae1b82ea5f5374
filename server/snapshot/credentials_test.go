package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/store"
)

// sealedStore is a store whose snapshots carry the credentials of a.
type sealedStore struct {
	*store.Bolt
	a *pki.Authority
}

func (s sealedStore) SealedCredentials() ([]byte, error) { return pki.Seal(s.a.Shared()) }

// A snapshot carries the cluster's credentials sealed with the join token:
// restored with that token, the new data directory has the cluster's CA,
// keys and token; without it, or with another, nothing is written.
func TestRestoreCredentials(t *testing.T) {
	ctx := context.Background()
	a, err := pki.Ensure(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sh := a.Shared()
	m := save(t, t.TempDir(), "snap", t0, sealedStore{liveStore(t, 2), a})
	if len(m.Credentials) == 0 {
		t.Fatalf("Save of a Sealer kept no credentials")
	}
	if bytes.Contains(m.Credentials, sh.CAKey) || bytes.Contains(m.Credentials, []byte(sh.TokenSecret)) {
		t.Errorf("the snapshot's metadata holds the CA key or the token secret in the clear")
	}
	other, err := pki.Ensure(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"no token", "", snapshot.ErrTokenRequired},
		{"wrong secret", "not-the-secret", pki.ErrWrongToken},
		{"token of another cluster", other.Token(), pki.ErrWrongToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "new")
			_, err := snapshot.Restore(ctx, m.Path, dataDir, snapshot.RestoreOptions{Bump: 10, Token: tc.token})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Restore(token %q) = %v, want %v", tc.token, err, tc.want)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Restore(token %q) created %s: %v", tc.token, dataDir, err)
			}
		})
	}

	for _, token := range []string{a.Token(), a.TokenSecret()} {
		dataDir := filepath.Join(t.TempDir(), "new")
		res, err := snapshot.Restore(ctx, m.Path, dataDir, snapshot.RestoreOptions{Bump: 10, Token: token})
		if err != nil {
			t.Fatalf("Restore(the snapshot's token) = %v", err)
		}
		if !res.Credentials {
			t.Errorf("Restore(the snapshot's token).Credentials = false")
		}
		restored, err := pki.Ensure(dataDir, pki.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(restored.CAPEM(), a.CAPEM()) || restored.Token() != a.Token() || restored.AdminToken() != a.AdminToken() ||
			!restored.ServiceAccountKey().Equal(a.ServiceAccountKey()) {
			t.Errorf("the restored data directory has other credentials than the snapshot's cluster")
		}
	}

	// A snapshot without credentials (an earlier version's) restores its
	// store alone.
	plain := save(t, t.TempDir(), "plain", t0, liveStore(t, 1))
	dataDir := filepath.Join(t.TempDir(), "new")
	res, err := snapshot.Restore(ctx, plain.Path, dataDir, snapshot.RestoreOptions{Bump: 10})
	if err != nil || res.Credentials {
		t.Fatalf("Restore(no credentials) = %+v, %v; want the store restored without credentials", res, err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "db") {
		t.Errorf("Restore(no credentials) wrote %v, want db only", entries)
	}
}
