package server

import (
	"context"
	"testing"

	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/store/storetest"
)

// Servers of one cluster sign service account tokens with one key: the
// first server's, or, in a datastore initialised before servers shared
// it, the first joining server's.
func TestBootstrapSharesServiceAccountKey(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cli := etcdClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lg := testLogger(t)
	first, err := bootstrap(ctx, Config{DataDir: t.TempDir()}, cli, "/shared", "", lg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, cli, "/shared", "", lg)
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
	if _, err := cli.Put(ctx, "/legacy"+bootstrapKey, string(sealed)); err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, cli, "/legacy", "", lg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bootstrap(ctx, Config{DataDir: t.TempDir(), Token: first.Token()}, cli, "/legacy", "", lg)
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
