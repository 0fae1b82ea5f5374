package nodes_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certificatesclient "k8s.io/client-go/kubernetes/typed/certificates/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/auth"
)

func caPEM(t *testing.T, cn string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// Every ClusterTrustBundle reaches every node: in the complete set, then
// as it changes and goes, decoded as certificates.k8s.io/v1.
func TestSessionClusterTrustBundles(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	certs, err := certificatesclient.NewForConfig(e.api.LoopbackConfig(auth.AdminUser))
	if err != nil {
		t.Fatal(err)
	}
	ctbs := certs.ClusterTrustBundles()
	one := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "example.com:s:one", Labels: map[string]string{"a": "b"}},
		Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "example.com/s", TrustBundle: caPEM(t, "one")}}
	if _, err := ctbs.Create(ctxT(t), one, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	t.Cleanup(cancel)
	s, err := c.Session(ctx, &api.SessionRequest{AcceptProtobuf: true})
	if err != nil {
		t.Fatal(err)
	}
	kind := api.ObjectKind_OBJECT_KIND_CLUSTERTRUSTBUNDLE
	first := recvT(t, s)
	if got, want := summary(first, kind), []string{"PUT OBJECT_KIND_CLUSTERTRUSTBUNDLE /example.com:s:one"}; !slices.Equal(got, want) {
		t.Fatalf("complete set = %v, want %v", got, want)
	}
	for _, ch := range first.Changes {
		if ch.Kind != kind {
			continue
		}
		var got certificatesv1.ClusterTrustBundle
		if err := api.DecodeObject(ch.Object, &got); err != nil || got.APIVersion != "certificates.k8s.io/v1" ||
			got.Spec.TrustBundle != one.Spec.TrustBundle || got.Labels["a"] != "b" {
			t.Errorf("bundle = %+v, %v; want %s as created", got, err, one.Name)
		}
	}

	two := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "two"},
		Spec: certificatesv1.ClusterTrustBundleSpec{TrustBundle: caPEM(t, "two")}}
	if _, err := ctbs.Create(ctxT(t), two, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ctbs.Delete(ctxT(t), one.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	end, err := e.st.CurrentRevision(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for last := first.Revision; last < end; {
		m := recvT(t, s)
		last = m.Revision
		got = append(got, summary(m, kind)...)
	}
	want := []string{"PUT OBJECT_KIND_CLUSTERTRUSTBUNDLE /two", "DELETE OBJECT_KIND_CLUSTERTRUSTBUNDLE /example.com:s:one"}
	if !slices.Equal(got, want) {
		t.Errorf("batches = %v, want %v", got, want)
	}
}
