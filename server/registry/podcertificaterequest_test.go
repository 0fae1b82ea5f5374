package registry

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// pcrKey makes a P-256 key, its stub request and a certificate for it
// valid from an hour from now-1m.
func pcrKey(t *testing.T) (stub []byte, issue func(lifetime time.Duration) (chain string, notBefore, notAfter time.Time)) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stub, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return stub, func(lifetime time.Duration) (string, time.Time, time.Time) {
		nb := time.Now().Add(-time.Minute).Truncate(time.Second)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pod"},
			NotBefore: nb, NotAfter: nb.Add(lifetime), DNSNames: []string{"pod.example.com"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nb, nb.Add(lifetime)
	}
}

func testPCR(stub []byte) *certificatesv1.PodCertificateRequest {
	return &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{Name: "req", Namespace: "ns"},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName: "example.com/signer", PodName: "pod", PodUID: "uid-1", ServiceAccountName: "default", ServiceAccountUID: "uid-2",
			NodeName: "node", NodeUID: "uid-3", MaxExpirationSeconds: ptrTo[int32](86400), StubPKCS10Request: stub,
		}}
}

func TestValidatePodCertificateRequest(t *testing.T) {
	type pcr = certificatesv1.PodCertificateRequest
	stub, _ := pcrKey(t)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edStub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, ed)
	if err != nil {
		t.Fatal(err)
	}
	badSig := append([]byte(nil), stub...)
	badSig[len(badSig)-3] ^= 0xff
	runValidation(t, podCertificateRequestResource, func() *pcr { return testPCR(stub) }, []validationCase[*pcr]{
		{name: "valid"},
		{"ed25519 key", func(p *pcr) { p.Spec.StubPKCS10Request = edStub }, nil},
		{"signer", func(p *pcr) { p.Spec.SignerName = "signer" }, []string{errKey(invalid, "spec.signerName")}},
		{"pod name", func(p *pcr) { p.Spec.PodName = "Pod_1" }, []string{errKey(invalid, "spec.podName")}},
		{"pod UID", func(p *pcr) { p.Spec.PodUID = "" }, []string{errKey(invalid, "spec.podUID")}},
		{"node UID length", func(p *pcr) { p.Spec.NodeUID = types.UID(strings.Repeat("u", 129)) }, []string{errKey(tooLong, "spec.nodeUID")}},
		{"lifetime required", func(p *pcr) { p.Spec.MaxExpirationSeconds = nil }, []string{errKey(required, "spec.maxExpirationSeconds")}},
		{"lifetime of a Kubernetes signer", func(p *pcr) {
			p.Spec.SignerName, p.Spec.MaxExpirationSeconds = "kubernetes.io/x", ptrTo[int32](86401)
		}, []string{errKey(invalid, "spec.maxExpirationSeconds")}},
		{"lifetime at least an hour", func(p *pcr) { p.Spec.MaxExpirationSeconds = ptrTo[int32](3599) }, []string{errKey(invalid, "spec.maxExpirationSeconds")}},
		{"request required", func(p *pcr) { p.Spec.StubPKCS10Request = nil }, []string{errKey(required, "spec.stubPKCS10Request")}},
		{"request parses", func(p *pcr) { p.Spec.StubPKCS10Request = []byte("junk") }, []string{errKey(invalid, "spec.stubPKCS10Request")}},
		{"request signed", func(p *pcr) { p.Spec.StubPKCS10Request = badSig }, []string{errKey(invalid, "spec.stubPKCS10Request")}},
		{"user annotations", func(p *pcr) { p.Spec.UnverifiedUserAnnotations = map[string]string{"nodomain": "x"} },
			[]string{errKey(invalid, "spec.unverifiedUserAnnotations")}},
	})
}

func TestPodCertificateRequestWrites(t *testing.T) {
	type pcr = certificatesv1.PodCertificateRequest
	stub, issue := pcrKey(t)
	_, otherIssue := pcrKey(t)
	cond := func(typ string) []metav1.Condition {
		return []metav1.Condition{{Type: typ, Status: metav1.ConditionTrue, Reason: "Test", LastTransitionTime: metav1.Now()}}
	}
	issued := func(p *pcr, chain string, nb, na time.Time) {
		p.Status = certificatesv1.PodCertificateRequestStatus{Conditions: cond(certificatesv1.PodCertificateRequestConditionTypeIssued),
			CertificateChain: chain, NotBefore: &metav1.Time{Time: nb}, NotAfter: &metav1.Time{Time: na},
			BeginRefreshAt: &metav1.Time{Time: nb.Add(30 * time.Minute)}}
	}
	tests := []struct {
		name   string
		old    func(*pcr)
		mutate func(*pcr)
		want   []string
	}{{
		name: "issue",
		mutate: func(p *pcr) {
			c, nb, na := issue(time.Hour)
			issued(p, c, nb, na)
			p.Labels = map[string]string{"dropped": "yes"}
		},
	}, {
		name:   "issue to another key",
		mutate: func(p *pcr) { c, nb, na := otherIssue(time.Hour); issued(p, c, nb, na) },
		want:   []string{errKey(invalid, "status.certificateChain")},
	}, {
		name:   "issue longer than asked",
		mutate: func(p *pcr) { c, nb, na := issue(25 * time.Hour); issued(p, c, nb, na) },
		want:   []string{errKey(invalid, "status.certificateChain")},
	}, {
		name:   "issue with times not the certificate's",
		mutate: func(p *pcr) { c, nb, _ := issue(time.Hour); issued(p, c, nb, nb.Add(2*time.Hour)) },
		want:   []string{errKey(invalid, "status.notAfter")},
	}, {
		name:   "deny",
		mutate: func(p *pcr) { p.Status.Conditions = cond(certificatesv1.PodCertificateRequestConditionTypeDenied) },
	}, {
		name: "deny with a chain",
		mutate: func(p *pcr) {
			p.Status.Conditions = cond(certificatesv1.PodCertificateRequestConditionTypeDenied)
			p.Status.CertificateChain, _, _ = issue(time.Hour)
		},
		want: []string{errKey(invalid, "status")},
	}, {
		name:   "unknown condition",
		mutate: func(p *pcr) { p.Status.Conditions = cond("Approved") },
		want:   []string{errKey(notSupported, "status.conditions[0].type")},
	}, {
		name:   "no change after the end",
		old:    func(p *pcr) { p.Status.Conditions = cond(certificatesv1.PodCertificateRequestConditionTypeFailed) },
		mutate: func(p *pcr) { p.Status.Conditions = cond(certificatesv1.PodCertificateRequestConditionTypeDenied) },
		want:   []string{errKey(invalid, "status")},
	}, {
		name:   "pending status fixed",
		mutate: func(p *pcr) { p.Status.CertificateChain, _, _ = issue(time.Hour) },
		want:   []string{errKey(invalid, "status")},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := testPCR(stub)
			if tc.old != nil {
				tc.old(old)
			}
			obj := old.DeepCopy()
			obj.Spec.PodName = "changed"
			tc.mutate(obj)
			podCertificateRequestResource.PrepareForStatusUpdate(obj, old)
			if diff := cmp.Diff(tc.want, errorKeys(podCertificateRequestResource.ValidateStatusUpdate(obj, old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if obj.Spec.PodName != "pod" || obj.Labels != nil {
				t.Errorf("status write changed spec or labels: %q %v", obj.Spec.PodName, obj.Labels)
			}
		})
	}

	// The main resource keeps the status and the spec.
	old := testPCR(stub)
	obj := old.DeepCopy()
	obj.Status.Conditions = cond(certificatesv1.PodCertificateRequestConditionTypeDenied)
	obj.Spec.NodeName = "other"
	podCertificateRequestResource.PrepareForUpdate(obj, old)
	if len(obj.Status.Conditions) != 0 {
		t.Errorf("update set conditions %+v", obj.Status.Conditions)
	}
	if diff := cmp.Diff([]string{errKey(invalid, "spec")}, errorKeys(podCertificateRequestResource.ValidateUpdate(obj, old))); diff != "" {
		t.Errorf("update errors (-want +got):\n%s", diff)
	}
}
