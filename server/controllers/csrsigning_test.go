package controllers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/pki"
)

// TestCSRSigning approves client CSRs: one for kube-apiserver-client is
// signed by the cluster CA for its user, groups and duration; one with a
// server usage fails; one of another signer and an unapproved one are
// left alone.
func TestCSRSigning(t *testing.T) {
	e := newEnv(t)
	authority, err := pki.Ensure(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCSRSigningController(e.client, e.factory.Certificates().V1().CertificateSigningRequests(), authority, e.lg)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "alice", Organization: []string{"devs"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	request := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	csrs := e.client.CertificatesV1().CertificateSigningRequests()
	create := func(name, signer string, approve bool, usages ...certificatesv1.KeyUsage) {
		t.Helper()
		csr, err := csrs.Create(e.ctx, &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: request, SignerName: signer, Usages: usages,
				ExpirationSeconds: new(int32(3600))}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !approve {
			return
		}
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"}}
		if _, err := csrs.UpdateApproval(e.ctx, name, csr, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	client := certificatesv1.KubeAPIServerClientSignerName
	create("client", client, true, certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth)
	create("server", client, true, certificatesv1.UsageServerAuth)
	create("other", "example.com/other", true, certificatesv1.UsageClientAuth)
	create("pending", client, false, certificatesv1.UsageClientAuth)
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })

	var issued *certificatesv1.CertificateSigningRequest
	e.eventually("client signed", func() error {
		issued, err = csrs.Get(e.ctx, "client", metav1.GetOptions{})
		if err != nil || len(issued.Status.Certificate) == 0 {
			return fmt.Errorf("not signed: %v", err)
		}
		return nil
	})
	block, rest := pem.Decode(issued.Status.Certificate)
	if block == nil || len(rest) != 0 {
		t.Fatalf("certificate = %q, want one PEM block", issued.Status.Certificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(authority.CACert())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not verify as a client one of the CA: %v", err)
	}
	if cert.Subject.CommonName != "alice" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "devs" {
		t.Errorf("subject = %v, want alice in devs", cert.Subject)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d > time.Hour+5*time.Minute || d < time.Hour {
		t.Errorf("validity = %v, want the hour asked for (with some backdating)", d)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("certificate of another key")
	}

	e.eventually("server failed", func() error {
		csr, err := csrs.Get(e.ctx, "server", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !hasTrueCondition(csr, certificatesv1.CertificateFailed) || len(csr.Status.Certificate) > 0 {
			return fmt.Errorf("status %+v", csr.Status)
		}
		return nil
	})
	// Left alone: whether or not they were synced yet, neither may be
	// signed or failed.
	for _, name := range []string{"other", "pending"} {
		csr, err := csrs.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil || len(csr.Status.Certificate) > 0 || hasTrueCondition(csr, certificatesv1.CertificateFailed) {
			t.Errorf("%s = %+v, %v; want it left alone", name, csr.Status, err)
		}
	}
}
