//go:build integration

package test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// pcrSigner issues the PodCertificateRequests of its signer name from a
// test CA, and denies those of its deny signer name, as a signer
// controller would.
type pcrSigner struct {
	name, denyName string
	caCert         *x509.Certificate
	caKey          crypto.Signer

	mu   sync.Mutex
	seen map[string]certificatesv1.PodCertificateRequestSpec // by request name
}

func newPCRSigner(t *testing.T, name, denyName string) *pcrSigner {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pod signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pcrSigner{name: name, denyName: denyName, caCert: ca, caKey: key, seen: map[string]certificatesv1.PodCertificateRequestSpec{}}
}

// run handles the pending requests of its signers every 200 ms until ctx
// ends.
func (s *pcrSigner) run(ctx context.Context, t *testing.T, cs *kubernetes.Clientset) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		list, err := cs.CertificatesV1().PodCertificateRequests("").List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for i := range list.Items {
			pcr := &list.Items[i]
			if len(pcr.Status.Conditions) > 0 || (pcr.Spec.SignerName != s.name && pcr.Spec.SignerName != s.denyName) {
				continue
			}
			if err := s.handle(ctx, cs, pcr); err != nil && ctx.Err() == nil {
				t.Logf("signing %s/%s: %v", pcr.Namespace, pcr.Name, err)
			}
		}
	}
}

func (s *pcrSigner) handle(ctx context.Context, cs *kubernetes.Clientset, pcr *certificatesv1.PodCertificateRequest) error {
	s.mu.Lock()
	s.seen[pcr.Name] = pcr.Spec
	s.mu.Unlock()
	now := time.Now().Truncate(time.Second)
	if pcr.Spec.SignerName == s.denyName {
		pcr.Status.Conditions = []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeDenied, Status: metav1.ConditionTrue,
			Reason: "NotAllowed", Message: "this signer signs nothing", LastTransitionTime: metav1.NewTime(now)}}
		_, err := cs.CertificatesV1().PodCertificateRequests(pcr.Namespace).UpdateStatus(ctx, pcr, metav1.UpdateOptions{})
		return err
	}
	csr, err := x509.ParseCertificateRequest(pcr.Spec.StubPKCS10Request)
	if err != nil {
		return err
	}
	lifetime := min(24*time.Hour, time.Duration(*pcr.Spec.MaxExpirationSeconds)*time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: pcr.Spec.PodName},
		DNSNames:  []string{pcr.Spec.PodName + "." + pcr.Namespace + ".pod"},
		NotBefore: now, NotAfter: now.Add(lifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, csr.PublicKey, s.caKey)
	if err != nil {
		return err
	}
	pcr.Status = certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue,
			Reason: "Signed", Message: "signed by the test signer", LastTransitionTime: metav1.NewTime(now)}},
		CertificateChain: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		NotBefore:        &metav1.Time{Time: now},
		BeginRefreshAt:   &metav1.Time{Time: now.Add(lifetime - 30*time.Minute)},
		NotAfter:         &metav1.Time{Time: now.Add(lifetime)},
	}
	_, err = cs.CertificatesV1().PodCertificateRequests(pcr.Namespace).UpdateStatus(ctx, pcr, metav1.UpdateOptions{})
	return err
}

// specOf returns the spec of a request the signer saw for pod.
func (s *pcrSigner) specOf(pod string) (certificatesv1.PodCertificateRequestSpec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, spec := range s.seen {
		if spec.PodName == pod {
			return spec, true
		}
	}
	return certificatesv1.PodCertificateRequestSpec{}, false
}

// TestIntegrationPodCertificateVolume runs a pod with a podCertificate
// projection: the node makes a key, asks for a certificate through a
// PodCertificateRequest, which a signer in the test issues, and the pod
// reads its credential bundle: the key, then a chain whose leaf is for
// that key and verifies against the signer's CA. A pod whose signer
// denies its requests stays Pending, with a Denied event.
func TestIntegrationPodCertificateVolume(t *testing.T) {
	s, ip := startClusterServer(t)
	a := startAgent(t, s, ip, 1)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, a.name)
	ctx, stop := context.WithCancel(context.Background())
	signer := newPCRSigner(t, "example.com/pods", "example.com/nobody")
	done := make(chan struct{})
	go func() { signer.run(ctx, t, cs); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	eventually(t, 60*time.Second, "the default service account", func() error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})

	cert := corev1.VolumeProjection{PodCertificate: &corev1.PodCertificateProjection{
		SignerName: signer.name, KeyType: "ECDSAP256", CredentialBundlePath: "bundle.pem",
		UserAnnotations: map[string]string{"example.com/team": "tests"},
	}}
	reader := ctbPod("certreader", `cat /ctb/bundle.pem; echo BUNDLE-DONE; while true; do sleep 1; done`, cert)
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Pods("default").Create(ctx, reader, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() { deletePodNow(cs, "certreader") })
	waitPodRunning(t, cs, "default", "certreader")
	waitLog(t, cs, "default", "certreader", "BUNDLE-DONE", 30*time.Second)
	out, err := podLogs(cs, "default", "certreader")
	if err != nil {
		t.Fatal(err)
	}
	checkBundle(t, []byte(out[:strings.Index(out, "BUNDLE-DONE")]), signer.caCert)

	pod, err := cs.CoreV1().Pods("default").Get(ctx, "certreader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, ok := signer.specOf("certreader")
	if !ok {
		t.Fatal("the signer saw no request of certreader")
	}
	if spec.PodUID != pod.UID || string(spec.NodeName) != a.name || spec.NodeUID == "" || spec.ServiceAccountName != "default" ||
		spec.ServiceAccountUID == "" || spec.MaxExpirationSeconds == nil || *spec.MaxExpirationSeconds != 86400 ||
		spec.UnverifiedUserAnnotations["example.com/team"] != "tests" {
		t.Errorf("request spec = %+v, want certreader's on %s as default for 86400 s with its annotation", spec, a.name)
	}

	denied := ctbPod("certdenied", `cat /ctb/bundle.pem; while true; do sleep 1; done`, corev1.VolumeProjection{PodCertificate: &corev1.PodCertificateProjection{
		SignerName: signer.denyName, KeyType: "ED25519", CredentialBundlePath: "bundle.pem"}})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Pods("default").Create(ctx, denied, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() { deletePodNow(cs, "certdenied") })
	waitEventMessage(t, cs, "certdenied", "Denied", `reason="NotAllowed"`)
	p, err := cs.CoreV1().Pods("default").Get(ctx, "certdenied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("certdenied is %s, want Pending while its certificate is denied", p.Status.Phase)
	}
}

// checkBundle checks a credential bundle: a PKCS#8 private key, then a
// chain whose leaf is for that key and verifies against ca.
func checkBundle(t *testing.T, bundle []byte, ca *x509.Certificate) {
	t.Helper()
	block, rest := pem.Decode(bundle)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("the bundle does not start with a PRIVATE KEY:\n%s", bundle)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("a %s block in the chain", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("no certificate in the bundle:\n%s", bundle)
	}
	pub := key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if !pub.Equal(certs[0].PublicKey) {
		t.Error("the leaf certificate is not for the bundle's key")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("the chain does not verify against the signer's CA: %v", err)
	}
}
