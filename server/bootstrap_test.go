package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/coord"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/store/storetest"
)

const testTimeout = 20 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// Servers of one cluster sign service account tokens with one key: the
// first server's, or, in a datastore initialised before servers shared
// it, the first joining server's.
func TestBootstrapSharesServiceAccountKey(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lg := testLogger(t)
	shared := coord.NewEtcdSecrets(cli, "/shared")
	first, err := bootstrap(ctx, Config{DataDir: t.TempDir()}, shared, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, shared, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	if !second.ServiceAccountKey().Equal(first.ServiceAccountKey()) {
		t.Errorf("joined server's service account key differs from the first's")
	}

	legacy := first.Shared()
	legacy.ServiceAccountKey = nil
	sealed, err := pki.Seal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	legacyStore := coord.NewEtcdSecrets(cli, "/legacy")
	if _, err := legacyStore.Create(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, legacyStore, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, legacyStore, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ServiceAccountKey().Equal(b.ServiceAccountKey()) {
		t.Errorf("in a datastore without a shared key, the second joining server's key differs from the first's")
	}
	if b.ServiceAccountKey().Equal(first.ServiceAccountKey()) {
		t.Fatalf("test premise: the joining server generated the first server's key")
	}
}

func TestBootstrapSharesFrontProxyCA(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lg := testLogger(t)
	first, err := bootstrap(ctx, Config{DataDir: t.TempDir()}, coord.NewEtcdSecrets(cli, "/shared"), "", lg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, coord.NewEtcdSecrets(cli, "/shared"), "", lg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second.FrontProxyCAPEM(), first.FrontProxyCAPEM()) {
		t.Errorf("joined server's front-proxy CA differs from the first's")
	}

	// Data sealed before the front-proxy CA was shared gets the first
	// joining server's, which the next one adopts.
	legacy := first.Shared()
	legacy.FrontProxyCACert, legacy.FrontProxyCAKey = nil, nil
	sealed, err := pki.Seal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	legacyStore := coord.NewEtcdSecrets(cli, "/legacy")
	if _, err := legacyStore.Create(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, legacyStore, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, legacyStore, "", lg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.FrontProxyCAPEM(), b.FrontProxyCAPEM()) {
		t.Errorf("in a datastore without a shared front-proxy CA, the second joining server's differs from the first's")
	}
	if bytes.Equal(b.FrontProxyCAPEM(), first.FrontProxyCAPEM()) {
		t.Fatalf("test premise: the joining server generated the first server's front-proxy CA")
	}
}

func TestBootstrap(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := storetest.EtcdClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lg := testLogger(t)
	cfg := func(extra func(*Config)) Config {
		c := Config{DataDir: t.TempDir(), HTTPSPort: 6443}
		if extra != nil {
			extra(&c)
		}
		return c
	}
	secrets := coord.NewEtcdSecrets(cli, "/test")
	first, err := bootstrap(ctx, cfg(nil), secrets, "10.0.0.1", lg)
	if err != nil {
		t.Fatalf("first bootstrap = %v", err)
	}
	stored, _, found, err := secrets.Sealed(ctx)
	if err != nil || !found {
		t.Fatalf("bootstrap key: %v", err)
	}
	if sh := first.Shared(); bytes.Contains(stored, sh.CAKey) || bytes.Contains(stored, []byte(sh.TokenSecret)) {
		t.Errorf("the datastore holds the CA key or the token secret in the clear")
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"full token", first.Token(), nil},
		{"token secret", first.TokenSecret(), nil},
		{"wrong secret", "not-the-secret", ErrWrongToken},
		{"token of another CA", api.FormatToken(api.CAHash([]byte("other")), first.TokenSecret()), ErrWrongToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(func(c *Config) { c.Token = tc.token })
			a, err := bootstrap(ctx, c, secrets, "10.0.0.2", lg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("bootstrap = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(a.CAPEM(), first.CAPEM()) || a.Token() != first.Token() || a.AdminToken() != first.AdminToken() {
				t.Errorf("joined server's CA or tokens differ from the first's")
			}
			if _, err := os.Stat(filepath.Join(c.DataDir, pki.KubeconfigFile)); err != nil {
				t.Errorf("joined server wrote no kubeconfig: %v", err)
			}
		})
	}
	if _, err := bootstrap(ctx, cfg(nil), secrets, "", lg); err == nil {
		t.Errorf("bootstrap without a token on an initialised datastore succeeded")
	}
}

func TestBootstrapRace(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const secret = "0123456789abcdef0123456789abcdef"
	var (
		wg   sync.WaitGroup
		cas  [4][]byte
		errs [4]error
	)
	for i := range cas {
		cli := storetest.EtcdClient(t, endpoint)
		dir := t.TempDir()
		wg.Go(func() {
			a, err := bootstrap(ctx, Config{DataDir: dir, Token: secret}, coord.NewEtcdSecrets(cli, "/race"), "", testLogger(t))
			if errs[i] = err; err == nil {
				cas[i] = a.CAPEM()
			}
		})
	}
	wg.Wait()
	for i := range cas {
		if errs[i] != nil {
			t.Fatalf("server %d: %v", i, errs[i])
		}
		if !bytes.Equal(cas[i], cas[0]) {
			t.Errorf("server %d ended with another CA than server 0", i)
		}
	}
}
