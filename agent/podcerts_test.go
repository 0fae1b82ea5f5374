package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// The agent asks the node service for its pods' certificates and learns
// what the signer did: pending, issued (chain and times), denied, gone.
func TestPodCertificates(t *testing.T) {
	c := newCluster(t)
	a := newAgent(t, c, c.ca.Token(), t.TempDir())
	j, err := a.join(ctxT(t), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer j.conn.Close()
	src := podCertificates{client: api.NewNodeClient(j.conn)}
	if _, err := c.admin.Nodes().Create(ctxT(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.ServiceAccounts("default").Create(ctxT(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := c.admin.Pods("default").Create(ctxT(t), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{PodCertificate: &corev1.PodCertificateProjection{
					SignerName: "example.com/s", KeyType: "ECDSAP256", CredentialBundlePath: "b.pem"}}}}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := pods.CertificateProjection{Volume: "tls", Source: 0, SignerName: "example.com/s", KeyType: "ECDSAP256"}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	create := func() pods.CertificateOutcome {
		t.Helper()
		out, err := src.CreatePodCertificate(ctxT(t), pod, ref, stub, 0)
		if err != nil || out.State != pods.CertificatePending || out.Request == "" {
			t.Fatalf("CreatePodCertificate() = %+v, %v; want a pending request", out, err)
		}
		return out
	}
	pcrs := c.certs.PodCertificateRequests("default")

	// Issued: the chain and its times come through.
	out := create()
	pcr, err := pcrs.Get(ctxT(t), out.Request, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "web"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	pcr.Status = certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue,
			Reason: "Signed", Message: "ok", LastTransitionTime: metav1.NewTime(now)}},
		CertificateChain: chain, NotBefore: &metav1.Time{Time: now},
		BeginRefreshAt: &metav1.Time{Time: now.Add(30 * time.Minute)}, NotAfter: &metav1.Time{Time: now.Add(time.Hour)},
	}
	if _, err := pcrs.UpdateStatus(ctxT(t), pcr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := src.WaitPodCertificate(ctxT(t), pod, out.Request, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != pods.CertificateIssued || string(got.Chain) != chain || !got.NotBefore.Equal(now) ||
		!got.BeginRefreshAt.Equal(now.Add(30*time.Minute)) || !got.NotAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("WaitPodCertificate(issued) = %+v, want the chain issued at %v", got, now)
	}

	// Denied: the reason and message come through.
	out = create()
	pcr, err = pcrs.Get(ctxT(t), out.Request, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pcr.Status.Conditions = []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeDenied, Status: metav1.ConditionTrue,
		Reason: "UnsupportedKeyType", Message: "use ED25519", LastTransitionTime: metav1.NewTime(now)}}
	if _, err := pcrs.UpdateStatus(ctxT(t), pcr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err = src.WaitPodCertificate(ctxT(t), pod, out.Request, 0)
	if err != nil || got.State != pods.CertificateDenied || got.Reason != "UnsupportedKeyType" || got.Message != "use ED25519" {
		t.Errorf("WaitPodCertificate(denied) = %+v, %v; want denied for UnsupportedKeyType", got, err)
	}

	// Gone: ErrNotFound, so that the node asks anew.
	if err := pcrs.Delete(ctxT(t), out.Request, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.WaitPodCertificate(ctxT(t), pod, out.Request, 0); !errors.Is(err, pods.ErrNotFound) {
		t.Errorf("WaitPodCertificate(deleted) = %v, want ErrNotFound", err)
	}

	// A projection the pod does not have is refused.
	other := ref
	other.SignerName = "example.com/other"
	if _, err := src.CreatePodCertificate(ctxT(t), pod, other, stub, 0); status.Code(err) != codes.PermissionDenied {
		t.Errorf("CreatePodCertificate(another signer) = %v, want PermissionDenied", err)
	}
}
