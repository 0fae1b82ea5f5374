package registry

import (
	"crypto/ed25519"
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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// testCertPEM is a self-signed certificate named cn in PEM form, a CA
// one when ca is set.
func testCertPEM(t *testing.T, cn string, ca bool) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: ca, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// testCSRPEM is a signed PKCS#10 request in PEM form.
func testCSRPEM(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "client"}}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestValidateClusterTrustBundle(t *testing.T) {
	type ctb = certificatesv1.ClusterTrustBundle
	ca, ca2, leaf := testCertPEM(t, "root", true), testCertPEM(t, "root2", true), testCertPEM(t, "leaf", false)
	base := func() *ctb {
		return &ctb{ObjectMeta: metav1.ObjectMeta{Name: "example.com:signer:one"},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "example.com/signer", TrustBundle: ca + ca2}}
	}
	tb := "spec.trustBundle"
	runValidation(t, clusterTrustBundleResource, base, []validationCase[*ctb]{
		{name: "valid"},
		{"no signer", func(b *ctb) { b.Name, b.Spec.SignerName = "plain", "" }, nil},
		{"no signer but a colon", func(b *ctb) { b.Spec.SignerName = "" }, []string{errKey(invalid, "metadata.name")}},
		{"name without the signer prefix", func(b *ctb) { b.Name = "other.com:signer:one" }, []string{errKey(invalid, "metadata.name")}},
		{"bad signer", func(b *ctb) { b.Name, b.Spec.SignerName = "nodomain:one", "nodomain" },
			[]string{errKey(invalid, "spec.signerName")}},
		{"no bundle", func(b *ctb) { b.Spec.TrustBundle = "" }, []string{errKey(invalid, tb)}},
		{"not PEM", func(b *ctb) { b.Spec.TrustBundle = "hello" }, []string{errKey(invalid, tb)}},
		{"not a CA", func(b *ctb) { b.Spec.TrustBundle = leaf }, []string{errKey(invalid, tb)}},
		{"duplicate", func(b *ctb) { b.Spec.TrustBundle = ca + ca }, []string{errKey(invalid, tb)}},
		{"other block type", func(b *ctb) {
			b.Spec.TrustBundle = ca + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}))
		}, []string{errKey(invalid, tb)}},
		{"headers", func(b *ctb) {
			blk, _ := pem.Decode([]byte(ca))
			blk.Headers = map[string]string{"a": "b"}
			b.Spec.TrustBundle = string(pem.EncodeToMemory(blk))
		}, []string{errKey(invalid, tb)}},
		{"too big", func(b *ctb) { b.Spec.TrustBundle = strings.Repeat(ca, MaxTrustBundleSize/len(ca)+1) },
			[]string{errKey(field.ErrorTypeTooLong, tb)}},
	})
	runUpdate(t, clusterTrustBundleResource, false, base, []validationCase[*ctb]{
		{"bundle may change", func(b *ctb) { b.Spec.TrustBundle = ca2 }, nil},
		{"signer is immutable", func(b *ctb) { b.Spec.SignerName = "example.com/other" },
			[]string{errKey(invalid, "metadata.name"), errKey(invalid, "spec.signerName")}},
	})
}

func testCSR(t *testing.T) func() *certificatesv1.CertificateSigningRequest {
	req := testCSRPEM(t)
	return func() *certificatesv1.CertificateSigningRequest {
		c := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "csr-1"},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: "example.com/signer",
				ExpirationSeconds: ptrTo[int32](3600), Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}}}
		csrResource.PrepareForCreate(c)
		return c
	}
}

func TestValidateCSR(t *testing.T) {
	type csr = certificatesv1.CertificateSigningRequest
	base := testCSR(t)
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}
	denied := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}
	runValidation(t, csrResource, base, []validationCase[*csr]{
		{name: "valid"},
		{"no request", func(c *csr) { c.Spec.Request = nil }, []string{errKey(invalid, "spec.request")}},
		{"a certificate as request", func(c *csr) { c.Spec.Request = []byte(testCertPEM(t, "x", true)) }, []string{errKey(invalid, "spec.request")}},
		{"no signer", func(c *csr) { c.Spec.SignerName = "" }, []string{errKey(required, "spec.signerName")}},
		{"signer without path", func(c *csr) { c.Spec.SignerName = "example.com" }, []string{errKey(invalid, "spec.signerName")}},
		{"legacy signer", func(c *csr) { c.Spec.SignerName = "kubernetes.io/legacy-unknown" }, []string{errKey(invalid, "spec.signerName")}},
		{"no usages", func(c *csr) { c.Spec.Usages = nil }, []string{errKey(required, "spec.usages")}},
		{"unknown usage", func(c *csr) { c.Spec.Usages = append(c.Spec.Usages, "flying") }, []string{errKey(notSupported, "spec.usages[2]")}},
		{"duplicate usage", func(c *csr) { c.Spec.Usages = append(c.Spec.Usages, certificatesv1.UsageClientAuth) },
			[]string{errKey(duplicate, "spec.usages[2]")}},
		{"short expiration", func(c *csr) { c.Spec.ExpirationSeconds = ptrTo[int32](599) }, []string{errKey(invalid, "spec.expirationSeconds")}},
		{"approved and denied", func(c *csr) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, denied}
		},
			[]string{errKey(invalid, "status.conditions")}},
		{"duplicate condition", func(c *csr) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, approved}
		},
			[]string{errKey(duplicate, "status.conditions[1].type")}},
		{"approved false", func(c *csr) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionFalse}}
		}, []string{errKey(notSupported, "status.conditions[0].status")}},
		{"bad certificate", func(c *csr) { c.Status.Certificate = []byte("nope") }, []string{errKey(invalid, "status.certificate")}},
	})
	runUpdate(t, csrResource, false, base, []validationCase[*csr]{
		{"spec is kept", func(c *csr) { c.Spec.SignerName = "example.com/other" }, nil},
		{"status is kept", func(c *csr) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} }, nil},
	})
	cert := testCertPEM(t, "issued", false)
	runUpdate(t, csrResource, true, base, []validationCase[*csr]{
		{"certificate may be set", func(c *csr) { c.Status.Certificate = []byte(cert) }, nil},
		{"other condition may be added", func(c *csr) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: "Custom", Status: corev1.ConditionTrue}}
		}, nil},
		{"approval may not be added", func(c *csr) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} },
			[]string{errKey(forbidden, "status.conditions")}},
	})
}

func TestCSRApprovalAndStatusWrites(t *testing.T) {
	type csr = certificatesv1.CertificateSigningRequest
	base := testCSR(t)
	cert := []byte(testCertPEM(t, "issued", false))
	// As stored: the approval write stamped its times.
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "R",
		LastUpdateTime: ago(time.Minute), LastTransitionTime: ago(time.Minute)}
	tests := []struct {
		name     string
		approval bool
		old      func(*csr)
		mutate   func(*csr)
		want     []string // error keys
		check    func(t *testing.T, got *csr)
	}{{
		name: "approval sets conditions only", approval: true,
		mutate: func(c *csr) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
			c.Status.Certificate = cert
			c.Spec.SignerName = "example.com/other"
		},
		check: func(t *testing.T, got *csr) {
			if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].LastUpdateTime.IsZero() || got.Status.Conditions[0].LastTransitionTime.IsZero() {
				t.Errorf("conditions = %+v, want Approved with times set", got.Status.Conditions)
			}
			if len(got.Status.Certificate) != 0 || got.Spec.SignerName != "example.com/signer" {
				t.Errorf("approval changed certificate %q or signer %q", got.Status.Certificate, got.Spec.SignerName)
			}
		},
	}, {
		name: "approval may not remove an approval", approval: true,
		old:    func(c *csr) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} },
		mutate: func(c *csr) { c.Status.Conditions = nil },
		want:   []string{errKey(forbidden, "status.conditions")},
	}, {
		name: "approval may not deny what was approved", approval: true,
		old: func(c *csr) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} },
		mutate: func(c *csr) {
			c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue})
		},
		want: []string{errKey(invalid, "status.conditions")},
	}, {
		name: "status keeps the approval as it was",
		old:  func(c *csr) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} },
		mutate: func(c *csr) {
			c.Status.Conditions[0].Reason = "Changed"
			c.Status.Certificate = cert
		},
		check: func(t *testing.T, got *csr) {
			if got.Status.Conditions[0].Reason != "R" || string(got.Status.Certificate) != string(cert) {
				t.Errorf("status = %+v, want the approval kept and the certificate set", got.Status)
			}
		},
	}, {
		name: "status may not replace a certificate",
		old:  func(c *csr) { c.Status.Certificate = cert },
		mutate: func(c *csr) {
			c.Status.Certificate = []byte(testCertPEM(t, "other", false))
		},
		want: []string{errKey(forbidden, "status.certificate")},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := base()
			if tc.old != nil {
				tc.old(old)
			}
			obj := old.DeepCopy()
			tc.mutate(obj)
			var errs []string
			if tc.approval {
				csrResource.Approval.PrepareForUpdate(obj, old)
				errs = errorKeys(csrResource.Approval.ValidateUpdate(obj, old))
			} else {
				csrResource.PrepareForStatusUpdate(obj, old)
				errs = errorKeys(csrResource.ValidateStatusUpdate(obj, old))
			}
			if diff := cmp.Diff(tc.want, errs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, obj)
			}
		})
	}
}

func TestCSRRequesterAndFields(t *testing.T) {
	c := testCSR(t)()
	c.Spec.Username = "forged"
	csrResource.PrepareForCreate(c)
	if c.Spec.Username != "" {
		t.Errorf("PrepareForCreate kept username %q", c.Spec.Username)
	}
	SetRequester(c, "alice", "u1", []string{"g"}, map[string][]string{"k": {"v"}})
	if c.Spec.Username != "alice" || c.Spec.UID != "u1" || c.Spec.Groups[0] != "g" || c.Spec.Extra["k"][0] != "v" {
		t.Errorf("SetRequester: spec = %+v", c.Spec)
	}
	if got := csrResource.FieldSet(c)["spec.signerName"]; got != "example.com/signer" {
		t.Errorf("FieldSet spec.signerName = %q, want example.com/signer", got)
	}
}
