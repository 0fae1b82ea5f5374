package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minik-dev/minik/server/coord"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/store/storetest"
)

// A token rotated on one server of a cluster reaches the others through
// the datastore; a server restarted with the old --token takes the new one,
// and a new server with the old token is refused.
func TestTokenSyncAcrossServers(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lg := testLogger(t)
	secrets := coord.NewEtcdSecrets(cli, "/tokens")
	dir1, dir2 := t.TempDir(), t.TempDir()
	first, err := bootstrap(ctx, Config{DataDir: dir1}, secrets, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	oldToken := first.Token()
	second, err := bootstrap(ctx, Config{DataDir: dir2, Token: oldToken}, secrets, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	ts1 := newTokenSync(secrets, first, dir1, func() {}, lg)
	ts2 := newTokenSync(secrets, second, dir2, func() { changed++ }, lg)
	if err := ts2.pull(ctx); err != nil || changed != 0 {
		t.Fatalf("pull before any rotation = %v, %d changes; want nil, 0", err, changed)
	}

	newToken, err := pki.RotateToken(dir1)
	if err != nil {
		t.Fatal(err)
	}
	if rotated, err := first.Refresh(); err != nil || !rotated {
		t.Fatalf("Refresh after the rotation = %v, %v; want true, nil", rotated, err)
	}
	if err := ts1.push(ctx); err != nil {
		t.Fatalf("push = %v", err)
	}
	if err := ts2.pull(ctx); err != nil {
		t.Fatalf("pull = %v", err)
	}
	if second.Token() != newToken || changed != 1 {
		t.Errorf("second server after pull: token %q, %d changes; want %q, 1", second.Token(), changed, newToken)
	}
	if data, _ := os.ReadFile(filepath.Join(dir2, pki.TokenFile)); strings.TrimSpace(string(data)) != newToken {
		t.Errorf("second server's token file = %q, want %q", data, newToken)
	}
	if err := ts1.push(ctx); err != nil {
		t.Errorf("push of a token already shared = %v", err)
	}

	if _, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: oldToken}, secrets, "", lg); !errors.Is(err, ErrWrongToken) {
		t.Errorf("a new server with the old token: bootstrap = %v, want %v", err, ErrWrongToken)
	}
	third, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: newToken}, secrets, "", lg)
	if err != nil || third.Token() != newToken {
		t.Fatalf("a new server with the new token: bootstrap = %v", err)
	}
	restarted, err := bootstrap(ctx, Config{DataDir: dir2, Token: oldToken}, secrets, "", lg)
	if err != nil {
		t.Fatalf("the second server restarted with the old --token: bootstrap = %v", err)
	}
	if restarted.Token() != newToken {
		t.Errorf("the second server restarted with the old --token has token %q, want the cluster's %q", restarted.Token(), newToken)
	}
}

// Bootstrap data sealed by a version that sealed it for token holders only
// is sealed again for the servers by the next server that joins.
func TestBootstrapSealsForServers(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lg := testLogger(t)
	first, err := pki.Ensure(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := pki.Seal(first.Shared())
	if err != nil {
		t.Fatal(err)
	}
	legacy := strings.Replace(string(sealed), `"serverCiphertext"`, `"unknownField"`, 1)
	secrets := coord.NewEtcdSecrets(cli, "/legacy-seal")
	if _, err := secrets.Create(ctx, []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, secrets, "", lg); err != nil {
		t.Fatal(err)
	}
	stored, _, _, err := secrets.Sealed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !pki.SealedForServers(stored) {
		t.Errorf("the bootstrap data is still sealed for token holders only after a server joined")
	}
}
