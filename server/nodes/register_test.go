package nodes_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

func TestRegister(t *testing.T) {
	e := newEnv(t, envOptions{})
	other, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "other"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		node  string
		want  codes.Code
	}{
		{"full token", e.ca.Token(), "n1", codes.OK},
		{"secret only", e.ca.TokenSecret(), "n2", codes.OK},
		{"wrong secret", api.FormatToken(api.CAHash(e.ca.CAPEM()), "nope"), "n3", codes.Unauthenticated},
		{"another cluster's token", other.Token(), "n3", codes.Unauthenticated},
		{"our secret pinning another CA", api.FormatToken(api.CAHash(other.CAPEM()), e.ca.TokenSecret()), "n3", codes.Unauthenticated},
		{"empty token", "", "n3", codes.Unauthenticated},
		{"bad node name", e.ca.Token(), "Not_A_Name", codes.InvalidArgument},
	}
	c := e.dial(nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, req := csr(t)
			resp, err := c.Register(ctxT(t), &api.RegisterRequest{Token: tc.token, NodeName: tc.node, NodePassword: "pw", Csr: req})
			if got := status.Code(err); got != tc.want {
				t.Fatalf("Register() = %v, want code %v", err, tc.want)
			}
			if tc.want != codes.OK {
				return
			}
			block, _ := pem.Decode(resp.Certificate)
			if block == nil {
				t.Fatalf("certificate is not PEM: %q", resp.Certificate)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if cn, o := cert.Subject.CommonName, cert.Subject.Organization; cn != "system:node:"+tc.node || len(o) != 1 || o[0] != "system:nodes" {
				t.Errorf("certificate subject = %q %q, want system:node:%s [system:nodes]", cn, o, tc.node)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: e.ca.ClientCAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("certificate does not verify: %v", err)
			}
			if !strings.HasSuffix(resp.Config.PodCidr, ".0/24") || !strings.HasPrefix(resp.Config.PodCidr, "10.42.") {
				t.Errorf("podCIDR = %q, want a /24 of 10.42.0.0/16", resp.Config.PodCidr)
			}
		})
	}
}

func TestPodCIDRs(t *testing.T) {
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	e := newEnv(t, envOptions{st: st, ca: ca})
	_, c1 := e.register("n1")
	_, c2 := e.register("n2")
	if c1.PodCidr == c2.PodCidr {
		t.Fatalf("n1 and n2 share podCIDR %s", c1.PodCidr)
	}
	if _, again := e.register("n1"); again.PodCidr != c1.PodCidr {
		t.Errorf("registering n1 again: podCIDR %s, want %s", again.PodCidr, c1.PodCidr)
	}

	// A restarted server (a new service over the same store) keeps them.
	e2 := newEnv(t, envOptions{st: st, ca: ca})
	client, cfg := e2.register("n1")
	if cfg.PodCidr != c1.PodCidr {
		t.Errorf("after a restart: podCIDR %s, want %s", cfg.PodCidr, c1.PodCidr)
	}
	if got, err := client.Config(ctxT(t), &api.ConfigRequest{}); err != nil || got.PodCidr != c1.PodCidr {
		t.Errorf("Config() = %v, %v; want podCIDR %s", got, err, c1.PodCidr)
	}

	// Deleting the Node releases its range.
	if _, err := client.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{}}); err != nil {
		t.Fatal(err)
	}
	if err := e2.admin.Nodes().Delete(ctxT(t), "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	key := "/registry/ranges/podcidrs/" + strings.Replace(c1.PodCidr, "/", "-", 1)
	deadline := time.Now().Add(testTimeout)
	for {
		_, err := st.Get(ctxT(t), key)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("podCIDR %s still allocated after its Node was deleted (Get = %v)", c1.PodCidr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, c3 := e2.register("n3"); c3.PodCidr != c1.PodCidr {
		t.Errorf("n3 got %s, want the released %s", c3.PodCidr, c1.PodCidr)
	}
}

func TestCallsNeedNodeCertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.dial(nil)
	_, err := c.Heartbeat(ctxT(t), &api.HeartbeatRequest{Ready: true})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Heartbeat without a certificate = %v, want Unauthenticated", err)
	}
	stream, err := c.Session(ctxT(t), &api.SessionRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Session without a certificate = %v, want Unauthenticated", err)
	}
}
