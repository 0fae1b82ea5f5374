package nodes_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

// registerAs registers node with password over c and returns the
// certificate it got, or the error.
func registerAs(t *testing.T, c api.NodeClient, token, node, password string) (*tls.Certificate, error) {
	t.Helper()
	key, req := csr(t)
	resp, err := c.Register(ctxT(t), &api.RegisterRequest{Token: token, NodeName: node, NodePassword: password, Csr: req})
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(resp.Certificate, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return &cert, nil
}

func TestNameBindingBolt(t *testing.T) {
	testNameBinding(t, storetest.New(t))
}

func TestNameBindingEtcd(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	open := func() store.Store {
		s, err := store.OpenEtcd(t.Context(), store.EtcdOptions{
			Endpoints: []string{endpoint}, Prefix: storetest.EtcdPrefix(t), CompactionInterval: -1,
		})
		if err != nil {
			t.Fatalf("OpenEtcd = %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	testNameBinding(t, open())
}

// testNameBinding: a name registered once can be registered again only
// with its password or its node's certificate, across a restart of the
// server, until an admin deletes the Node.
func testNameBinding(t *testing.T, st store.Store) {
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{st: st, ca: ca})
	anon := e.dial(nil)
	cert, err := registerAs(t, anon, ca.Token(), "n1", "first")
	if err != nil {
		t.Fatalf("first registration of n1: %v", err)
	}
	if _, err := e.dial(cert).UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{}}); err != nil {
		t.Fatalf("creating Node n1: %v", err)
	}
	denied := func(what, password string, c api.NodeClient) {
		t.Helper()
		if _, err := registerAs(t, c, ca.Token(), "n1", password); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: Register(n1) = %v, want PermissionDenied", what, err)
		}
	}
	denied("another password", "stolen", anon)
	if _, err := registerAs(t, anon, ca.Token(), "n1", "first"); err != nil {
		t.Errorf("the same password: Register(n1) = %v, want OK", err)
	}

	// The store keeps a hash, not the password.
	kv, err := st.Get(ctxT(t), "/registry/minik/nodepasswords/n1")
	if err != nil || strings.Contains(string(kv.Value), "first") {
		t.Fatalf("stored binding = %q, %v; want a record without the password", kv.Value, err)
	}

	// A restarted server (a new service over the same store) keeps it.
	e2 := newEnv(t, envOptions{st: st, ca: ca})
	anon2 := e2.dial(nil)
	denied("after a restart", "stolen", anon2)

	// The node's own certificate proves the name and rebinds it.
	if _, err := registerAs(t, e2.dial(cert), ca.Token(), "n1", "second"); err != nil {
		t.Fatalf("with n1's certificate: Register(n1) = %v, want OK", err)
	}
	denied("the old password after a rebinding", "first", anon2)

	// Another node's certificate does not.
	other, err := registerAs(t, anon2, ca.Token(), "n2", "pw2")
	if err != nil {
		t.Fatal(err)
	}
	denied("with n2's certificate", "stolen", e2.dial(other))

	// A Node without a binding (made before bindings existed) is not free.
	legacy := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}}
	if _, err := e2.admin.Nodes().Create(ctxT(t), legacy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := registerAs(t, anon2, ca.Token(), "legacy", "x"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Register(legacy) with its Node and no binding = %v, want PermissionDenied", err)
	}

	// An admin's deletion of the Node frees the name.
	if err := e2.admin.Nodes().Delete(ctxT(t), "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n1 registrable after its Node's deletion", func() bool {
		_, err := registerAs(t, anon2, ca.Token(), "n1", "new-machine")
		return err == nil
	})
	denied("the previous owner after the new registration", "second", anon2)
}

func TestRegisterNeedsPassword(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, p := range []string{"", strings.Repeat("x", 257)} {
		if _, err := registerAs(t, e.dial(nil), e.ca.Token(), "n1", p); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Register with a password of %d bytes = %v, want InvalidArgument", len(p), err)
		}
	}
}

// waitFor polls cond until it holds or testTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestPodCIDRsComeBack: names registered without ever creating their
// Node use up the cluster CIDR for a grace period only; a node that
// created its Node keeps its range.
func TestPodCIDRsComeBack(t *testing.T) {
	e := newEnv(t, envOptions{configure: func(c *nodes.Config) {
		c.ClusterCIDR = "10.42.0.0/22" // four /24s
		// Long enough that the ghosts still hold their ranges when
		// ghost-4 registers, on a loaded machine too.
		c.RegistrationGrace = 2 * time.Second
		c.RegistrationRate = -1
	}})
	anon := e.dial(nil)
	kept, keptCfg := e.register("kept")
	if _, err := kept.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ghost-1", "ghost-2", "ghost-3"} {
		if _, err := registerAs(t, anon, e.ca.Token(), n, "pw"); err != nil {
			t.Fatalf("Register(%s) = %v", n, err)
		}
	}
	if _, err := registerAs(t, anon, e.ca.Token(), "ghost-4", "pw"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Register(ghost-4) with the CIDR full = %v, want ResourceExhausted", err)
	}
	var real *tls.Certificate
	waitFor(t, "a podCIDR given back to the pool", func() bool {
		var err error
		real, err = registerAs(t, anon, e.ca.Token(), "real", "pw")
		return err == nil
	})
	cfg, err := e.dial(real).Config(ctxT(t), &api.ConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PodCidr == keptCfg.PodCidr {
		t.Errorf("real got %s, the range of kept, whose Node exists", cfg.PodCidr)
	}
	if got, err := kept.Config(ctxT(t), &api.ConfigRequest{}); err != nil || got.PodCidr != keptCfg.PodCidr {
		t.Errorf("kept: Config() = %v, %v; want its podCIDR %s", got, err, keptCfg.PodCidr)
	}
}

// TestRegistrationRateLimit: a burst of registrations with one token is
// cut at the bucket's size, with ResourceExhausted.
func TestRegistrationRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{configure: func(c *nodes.Config) {
		c.RegistrationBurst = 3
		c.RegistrationRate = 0.001 // no refill within the test
	}})
	anon := e.dial(nil)
	for i := range 5 {
		name := fmt.Sprintf("burst-%d", i)
		_, err := registerAs(t, anon, e.ca.Token(), name, "pw")
		want := codes.OK
		if i >= 3 {
			want = codes.ResourceExhausted
		}
		if got := status.Code(err); got != want {
			t.Errorf("Register(%s) = %v, want %v", name, err, want)
		}
	}
	// A wrong token is refused as such and takes nothing.
	if _, err := registerAs(t, anon, "wrong", "x", "pw"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Register with a wrong token = %v, want Unauthenticated", err)
	}
}
