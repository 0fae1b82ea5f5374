package nodes_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/auth"
)

const testSigner = "example.com/pods"

// certPod creates a pod on node whose volume "creds" holds a trust
// bundle and then a podCertificate source of testSigner for an ED25519
// key.
func (e *env) certPod(name, node string) *corev1.Pod {
	e.t.Helper()
	seconds := int32(7200)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: node, ServiceAccountName: "robot",
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
					{PodCertificate: &corev1.PodCertificateProjection{
						SignerName: testSigner, KeyType: "ED25519", MaxExpirationSeconds: &seconds,
						CredentialBundlePath: "bundle.pem", UserAnnotations: map[string]string{"example.com/role": "web"},
					}},
				},
			}}}},
		},
	}
	out, err := e.admin.Pods("default").Create(ctxT(e.t), p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("creating pod %q: %v", name, err)
	}
	return out
}

// createNode creates the Node object of a registered node.
func (e *env) createNode(name string) *corev1.Node {
	e.t.Helper()
	n, err := e.admin.Nodes().Create(ctxT(e.t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) certificates() certificatesv1client.CertificatesV1Interface {
	c, err := certificatesv1client.NewForConfig(e.api.LoopbackConfig(auth.AdminUser))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// stubRequest returns a new key and a stub PKCS#10 request signed by it.
func stubRequest(t *testing.T, ed bool) (crypto.Signer, []byte) {
	t.Helper()
	var key crypto.Signer
	var err error
	if ed {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func certCall(p *corev1.Pod, stub []byte) *api.CreatePodCertificateRequest {
	return &api.CreatePodCertificateRequest{
		Namespace: p.Namespace, PodName: p.Name, PodUid: string(p.UID), Volume: "creds", SourceIndex: 1,
		SignerName: testSigner, KeyType: "ED25519", StubPkcs10Request: stub,
	}
}

func TestCreatePodCertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	n1, _ := e.register("n1")
	e.register("n2")
	node := e.createNode("n1")
	e.createNode("n2")
	sa := e.putServiceAccount("robot")
	mine, theirs := e.certPod("mine", "n1"), e.certPod("theirs", "n2")
	_, stub := stubRequest(t, true)

	out, err := n1.CreatePodCertificate(ctxT(t), certCall(mine, stub))
	if err != nil {
		t.Fatalf("CreatePodCertificate(own pod) = %v", err)
	}
	if out.State != api.PodCertificateOutcome_PENDING || out.RequestName == "" {
		t.Fatalf("CreatePodCertificate(own pod) = %v, want a pending request", out)
	}
	pcr, err := e.certificates().PodCertificateRequests("default").Get(ctxT(t), out.RequestName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seconds := int32(7200)
	want := certificatesv1.PodCertificateRequestSpec{
		SignerName: testSigner, PodName: "mine", PodUID: mine.UID,
		ServiceAccountName: "robot", ServiceAccountUID: sa.UID,
		NodeName: "n1", NodeUID: node.UID, MaxExpirationSeconds: &seconds,
		StubPKCS10Request: stub, UnverifiedUserAnnotations: map[string]string{"example.com/role": "web"},
	}
	if diff := cmp.Diff(want, pcr.Spec); diff != "" {
		t.Errorf("request spec (-want +got):\n%s", diff)
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "mine", UID: mine.UID}}
	if diff := cmp.Diff(owner, pcr.OwnerReferences); diff != "" {
		t.Errorf("request owners (-want +got):\n%s", diff)
	}

	_, ecStub := stubRequest(t, false)
	for _, tc := range []struct {
		name   string
		change func(*api.CreatePodCertificateRequest)
		want   codes.Code
	}{
		{"another node's pod", func(r *api.CreatePodCertificateRequest) { r.PodName, r.PodUid = theirs.Name, string(theirs.UID) }, codes.PermissionDenied},
		{"a missing pod", func(r *api.CreatePodCertificateRequest) { r.PodName = "gone" }, codes.PermissionDenied},
		{"another uid", func(r *api.CreatePodCertificateRequest) { r.PodUid = "other" }, codes.PermissionDenied},
		{"another signer", func(r *api.CreatePodCertificateRequest) { r.SignerName = "example.com/other" }, codes.PermissionDenied},
		{"another key type", func(r *api.CreatePodCertificateRequest) { r.KeyType, r.StubPkcs10Request = "ECDSAP256", ecStub }, codes.PermissionDenied},
		{"a source that is not a podCertificate", func(r *api.CreatePodCertificateRequest) { r.SourceIndex = 0 }, codes.PermissionDenied},
		{"a source past the end", func(r *api.CreatePodCertificateRequest) { r.SourceIndex = 2 }, codes.PermissionDenied},
		{"another volume", func(r *api.CreatePodCertificateRequest) { r.Volume = "other" }, codes.PermissionDenied},
		{"a key of another type", func(r *api.CreatePodCertificateRequest) { r.StubPkcs10Request = ecStub }, codes.InvalidArgument},
		{"a stub that is not a request", func(r *api.CreatePodCertificateRequest) { r.StubPkcs10Request = []byte("junk") }, codes.InvalidArgument},
		{"no signer", func(r *api.CreatePodCertificateRequest) { r.SignerName = "" }, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := certCall(mine, stub)
			tc.change(req)
			_, err := n1.CreatePodCertificate(ctxT(t), req)
			if got := status.Code(err); got != tc.want {
				t.Errorf("CreatePodCertificate() = %v, want %v", err, tc.want)
			}
		})
	}
	list, err := e.certificates().PodCertificateRequests("default").List(ctxT(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("%d requests after the refused calls, want 1", len(list.Items))
	}
}

// testCA signs pod certificates as a signer would.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue writes an Issued status with a certificate for the request's key.
func (ca *testCA) issue(ctx context.Context, c certificatesv1client.CertificatesV1Interface, pcr *certificatesv1.PodCertificateRequest) (*certificatesv1.PodCertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(pcr.Spec.StubPKCS10Request)
	if err != nil {
		return nil, err
	}
	notBefore := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: pcr.Spec.PodName},
		NotBefore: notBefore, NotAfter: notBefore.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	pcr = pcr.DeepCopy()
	pcr.Status = certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue,
			Reason: "Signed", Message: "signed", LastTransitionTime: metav1.Now()}},
		CertificateChain: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		NotBefore:        &metav1.Time{Time: notBefore},
		BeginRefreshAt:   &metav1.Time{Time: notBefore.Add(40 * time.Minute)},
		NotAfter:         &metav1.Time{Time: notBefore.Add(time.Hour)},
	}
	return c.PodCertificateRequests(pcr.Namespace).UpdateStatus(ctx, pcr, metav1.UpdateOptions{})
}

// end writes a Denied or Failed status.
func end(ctx context.Context, c certificatesv1client.CertificatesV1Interface, pcr *certificatesv1.PodCertificateRequest, cond, reason string) error {
	pcr = pcr.DeepCopy()
	pcr.Status.Conditions = []metav1.Condition{{Type: cond, Status: metav1.ConditionTrue, Reason: reason, Message: "no " + reason, LastTransitionTime: metav1.Now()}}
	_, err := c.PodCertificateRequests(pcr.Namespace).UpdateStatus(ctx, pcr, metav1.UpdateOptions{})
	return err
}

func TestWaitPodCertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	n1, _ := e.register("n1")
	n2, _ := e.register("n2")
	e.createNode("n1")
	e.putServiceAccount("robot")
	mine := e.certPod("mine", "n1")
	certs := e.certificates()
	ca := newTestCA(t)
	create := func() *certificatesv1.PodCertificateRequest {
		t.Helper()
		_, stub := stubRequest(t, true)
		out, err := n1.CreatePodCertificate(ctxT(t), certCall(mine, stub))
		if err != nil {
			t.Fatal(err)
		}
		pcr, err := certs.PodCertificateRequests("default").Get(ctxT(t), out.RequestName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pcr
	}
	wait := func(c api.NodeClient, pcr *certificatesv1.PodCertificateRequest, seconds int32) (*api.PodCertificateOutcome, error) {
		return c.WaitPodCertificate(ctxT(t), &api.WaitPodCertificateRequest{
			Namespace: "default", PodName: mine.Name, PodUid: string(mine.UID), RequestName: pcr.Name, WaitSeconds: seconds,
		})
	}

	pcr := create()
	start := time.Now()
	out, err := wait(n1, pcr, 1)
	if err != nil || out.State != api.PodCertificateOutcome_PENDING || out.RequestName != pcr.Name {
		t.Fatalf("WaitPodCertificate(pending) = %v, %v; want %s pending", out, err, pcr.Name)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("WaitPodCertificate(pending, 1 s) returned after %v", d)
	}
	if _, err := wait(n2, pcr, 0); status.Code(err) != codes.NotFound {
		t.Errorf("WaitPodCertificate(another node's request) = %v, want NotFound", err)
	}

	// Issued while the node waits.
	issued := make(chan *certificatesv1.PodCertificateRequest, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		got, err := ca.issue(context.Background(), certs, pcr)
		if err != nil {
			t.Errorf("issuing: %v", err)
		}
		issued <- got
	}()
	out, err = wait(n1, pcr, 10)
	if err != nil {
		t.Fatalf("WaitPodCertificate(issued) = %v", err)
	}
	var got *certificatesv1.PodCertificateRequest
	select {
	case got = <-issued:
	case <-time.After(testTimeout):
		t.Fatal("not issued")
	}
	if got == nil {
		t.FailNow()
	}
	st := got.Status
	want := &api.PodCertificateOutcome{
		RequestName: pcr.Name, State: api.PodCertificateOutcome_ISSUED, CertificateChain: st.CertificateChain,
		NotBeforeUnix: st.NotBefore.Unix(), BeginRefreshAtUnix: st.BeginRefreshAt.Unix(), NotAfterUnix: st.NotAfter.Unix(),
	}
	if out.String() != want.String() {
		t.Errorf("WaitPodCertificate(issued) = %v, want %v", out, want)
	}

	for _, tc := range []struct {
		cond string
		want api.PodCertificateOutcome_State
	}{
		{certificatesv1.PodCertificateRequestConditionTypeDenied, api.PodCertificateOutcome_DENIED},
		{certificatesv1.PodCertificateRequestConditionTypeFailed, api.PodCertificateOutcome_FAILED},
	} {
		t.Run(tc.cond, func(t *testing.T) {
			pcr := create()
			if err := end(ctxT(t), certs, pcr, tc.cond, "Policy"); err != nil {
				t.Fatal(err)
			}
			out, err := wait(n1, pcr, 0)
			if err != nil || out.State != tc.want || out.Reason != "Policy" || out.Message != "no Policy" {
				t.Errorf("WaitPodCertificate() = %v, %v; want %v with reason Policy", out, err, tc.want)
			}
		})
	}

	t.Run("deleted while waiting", func(t *testing.T) {
		pcr := create()
		go func() {
			time.Sleep(200 * time.Millisecond)
			certs.PodCertificateRequests("default").Delete(context.Background(), pcr.Name, metav1.DeleteOptions{})
		}()
		if _, err := wait(n1, pcr, 10); status.Code(err) != codes.NotFound {
			t.Errorf("WaitPodCertificate(deleted) = %v, want NotFound", err)
		}
		if _, err := wait(n1, pcr, 0); status.Code(err) != codes.NotFound {
			t.Errorf("WaitPodCertificate(gone) = %v, want NotFound", err)
		}
	})
}

func TestPodCertificateCallsNeedNodeCertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.dial(nil)
	_, stub := stubRequest(t, true)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u"}}
	if _, err := c.CreatePodCertificate(ctxT(t), certCall(pod, stub)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("CreatePodCertificate without a certificate = %v, want Unauthenticated", err)
	}
	_, err := c.WaitPodCertificate(ctxT(t), &api.WaitPodCertificateRequest{Namespace: "default", PodName: "p", PodUid: "u", RequestName: "r"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("WaitPodCertificate without a certificate = %v, want Unauthenticated", err)
	}
}
