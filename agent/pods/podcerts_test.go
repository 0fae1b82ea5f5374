package pods

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// Every key type makes a key and a stub request signed by it: the
// signature verifies with the request's public key, which is the key's,
// and the PEM written to the volume holds the same key.
func TestNewCertificateKey(t *testing.T) {
	for _, tc := range []struct {
		keyType string
		check   func(pub crypto.PublicKey) bool
	}{
		{"RSA3072", func(p crypto.PublicKey) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 3072 }},
		{"RSA4096", func(p crypto.PublicKey) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 4096 }},
		{"ECDSAP256", func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P256() }},
		{"ECDSAP384", func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() }},
		{"ECDSAP521", func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P521() }},
		{"ED25519", func(p crypto.PublicKey) bool { _, ok := p.(ed25519.PublicKey); return ok }},
	} {
		t.Run(tc.keyType, func(t *testing.T) {
			key, stub, err := newCertificateKey(tc.keyType)
			if err != nil {
				t.Fatalf("newCertificateKey(%q) = %v", tc.keyType, err)
			}
			csr, err := x509.ParseCertificateRequest(stub)
			if err != nil {
				t.Fatalf("parsing the stub request: %v", err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("stub request signature: %v", err)
			}
			if !tc.check(csr.PublicKey) {
				t.Errorf("stub request key is a %T, want a %s key", csr.PublicKey, tc.keyType)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Error("stub request key is not the key made")
			}
			// A signature by the key verifies with the request's key.
			msg := []byte("pod-uid-1234")
			digest := sha256.Sum256(msg)
			var sig []byte
			switch key.(type) {
			case ed25519.PrivateKey:
				sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
			default:
				sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !verify(csr.PublicKey, msg, digest[:], sig) {
				t.Error("a signature by the key does not verify with the stub request's key")
			}
			keyPEM, err := pemKey(key)
			if err != nil {
				t.Fatal(err)
			}
			parsed := parsePrivateKey(t, keyPEM)
			if !parsed.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Error("the PEM key is not the key made")
			}
		})
	}
	if _, _, err := newCertificateKey("DSA1024"); err == nil {
		t.Error("newCertificateKey(DSA1024) succeeded")
	}
}

func verify(pub crypto.PublicKey, msg, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}

// parsePrivateKey parses the one PEM "PRIVATE KEY" (PKCS#8) block of b.
func parsePrivateKey(t *testing.T, b []byte) crypto.Signer {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("no PRIVATE KEY block in %q", b)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key.(crypto.Signer)
}

// fakeSigner is a CertificateSource that issues certificates of a test
// CA. Each request is pending until its first WaitPodCertificate; the
// first deny requests are denied; hold, while open, keeps requests
// pending.
type fakeSigner struct {
	t      *testing.T
	caCert *x509.Certificate
	caKey  crypto.Signer
	// lifetime is how long a certificate lasts; refresh how long before
	// its end renewal begins.
	lifetime, refresh time.Duration
	hold              chan struct{}

	mu       sync.Mutex
	deny     int
	requests []fakeRequest
}

type fakeRequest struct {
	ref  CertificateProjection
	stub []byte
}

func newFakeSigner(t *testing.T) *fakeSigner {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSigner{t: t, caCert: ca, caKey: key, lifetime: time.Hour, refresh: 30 * time.Minute}
}

func (f *fakeSigner) CreatePodCertificate(_ context.Context, pod *corev1.Pod, p CertificateProjection, stub []byte, _ time.Duration) (CertificateOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, fakeRequest{ref: p, stub: stub})
	return CertificateOutcome{Request: fmt.Sprintf("req-%d", len(f.requests)), State: CertificatePending}, nil
}

func (f *fakeSigner) WaitPodCertificate(ctx context.Context, pod *corev1.Pod, name string, wait time.Duration) (CertificateOutcome, error) {
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return CertificateOutcome{}, ctx.Err()
		case <-time.After(wait):
			return CertificateOutcome{Request: name, State: CertificatePending}, nil
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int
	fmt.Sscanf(name, "req-%d", &n)
	if n < 1 || n > len(f.requests) {
		return CertificateOutcome{}, fmt.Errorf("request %q: %w", name, ErrNotFound)
	}
	if f.deny > 0 {
		f.deny--
		return CertificateOutcome{Request: name, State: CertificateDenied, Reason: "Policy", Message: "not today"}, nil
	}
	csr, err := x509.ParseCertificateRequest(f.requests[n-1].stub)
	if err != nil {
		return CertificateOutcome{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(n + 1)), Subject: pkix.Name{CommonName: pod.Name},
		NotBefore: now, NotAfter: now.Add(f.lifetime)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.caCert, csr.PublicKey, f.caKey)
	if err != nil {
		return CertificateOutcome{}, err
	}
	chain := "junk between blocks\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Note": "ca"}, Bytes: f.caCert.Raw}))
	return CertificateOutcome{Request: name, State: CertificateIssued, Chain: []byte(chain),
		NotBefore: now, BeginRefreshAt: now.Add(f.lifetime - f.refresh), NotAfter: now.Add(f.lifetime)}, nil
}

func (f *fakeSigner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// certPod is a pod whose volume "tls" holds its name, then a credential
// bundle, a key and a chain of signer example.com/test.
func certPod() *corev1.Pod {
	pod := newPod("web", "")
	pod.Spec.Volumes = []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: mode(0o644),
		Sources: []corev1.VolumeProjection{
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
			{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/test", KeyType: "ECDSAP256",
				CredentialBundlePath: "bundle.pem", KeyPath: "tls.key", CertificateChainPath: "tls.crt"}},
		},
	}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: "/tls"}}
	return pod
}

// startCerts runs a manager with src and pod, with a short retry.
func startCerts(t *testing.T, src *fakeSigner, pod *corev1.Pod) (*harness, string) {
	t.Helper()
	h := start(t, Config{Certificates: src})
	h.m.certs.retryBase, h.m.certs.retryMax = 20*time.Millisecond, 20*time.Millisecond
	h.m.SetPods([]*corev1.Pod{pod})
	t.Cleanup(func() {
		// The volume's tmpfs goes before the data directory does.
		h.stop(t)
		if err := h.m.removeVolumes(pod.UID); err != nil {
			t.Error(err)
		}
	})
	return h, h.m.volumeDir(pod.UID, "tls")
}

// waitRead waits for path to exist and returns its contents.
func waitRead(t *testing.T, path string, unlike []byte) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && !bytes.Equal(b, unlike) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, %v; want new contents", path, b, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkCredentials checks the files of dir: the bundle is the key then
// the chain, the key is the leaf's, and the chain verifies against the
// signer's CA. It returns the key.
func checkCredentials(t *testing.T, src *fakeSigner, dir string) []byte {
	t.Helper()
	bundle, key, chain := readFile(filepath.Join(dir, "bundle.pem")), readFile(filepath.Join(dir, "tls.key")), readFile(filepath.Join(dir, "tls.crt"))
	if bundle != key+chain {
		t.Errorf("bundle.pem is not tls.key followed by tls.crt:\n%s", bundle)
	}
	if strings.Contains(chain, "junk") || strings.Contains(chain, "Note") || strings.Count(chain, "BEGIN CERTIFICATE") != 2 {
		t.Errorf("tls.crt keeps what is not a certificate:\n%s", chain)
	}
	priv := parsePrivateKey(t, []byte(key))
	block, _ := pem.Decode([]byte(chain))
	if block == nil {
		t.Fatal("no certificate in tls.crt")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Error("the leaf certificate is not for the key in tls.key")
	}
	roots := x509.NewCertPool()
	roots.AddCert(src.caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
		t.Errorf("the chain does not verify against the signer's CA: %v", err)
	}
	for _, name := range []string{"bundle.pem", "tls.key", "tls.crt"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Mode().Perm() != 0o644 {
			t.Errorf("%s mode = %v (%v), want 0644", name, info.Mode(), err)
		}
	}
	return []byte(key)
}

// Until the signer issues the certificate the volume is not set up and
// the pod's container waits in ContainerCreating, with a FailedMount
// event saying why; then the files are written and the pod runs.
func TestPodCertificateVolume(t *testing.T) {
	src := newFakeSigner(t)
	src.hold = make(chan struct{})
	pod := certPod()
	h, dir := startCerts(t, src, pod)

	h.rep.waitStatus(t, pod.UID, 10*time.Second, "waiting in ContainerCreating", func(st corev1.PodStatus) bool {
		return len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Waiting != nil &&
			st.ContainerStatuses[0].State.Waiting.Reason == reasonContainerCreating
	})
	waitEvent(t, h.rep, pod, ` Warning FailedMount: MountVolume.SetUp failed for volume "tls" : credential bundle is not issued yet`)
	if _, err := os.Stat(filepath.Join(dir, "bundle.pem")); err == nil {
		t.Error("bundle.pem written before the certificate was issued")
	}
	if st, _ := h.rep.last(pod.UID); st.Phase == corev1.PodRunning {
		t.Error("pod running before its certificate was issued")
	}
	close(src.hold)
	waitRead(t, filepath.Join(dir, "bundle.pem"), nil)
	h.rep.waitStatus(t, pod.UID, 10*time.Second, "running", phaseIs(corev1.PodRunning))
	checkCredentials(t, src, dir)
	if got := readFile(filepath.Join(dir, "name")); got != "web" {
		t.Errorf("name = %q, want web", got)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	want := CertificateProjection{Volume: "tls", Source: 1, SignerName: "example.com/test", KeyType: "ECDSAP256"}
	if diff := cmp.Diff(want, src.requests[0].ref); diff != "" {
		t.Errorf("projection asked for (-want +got):\n%s", diff)
	}
}

// A denied request is reported with an event and followed by a new
// request for a new key.
func TestPodCertificateDeniedRetried(t *testing.T) {
	src := newFakeSigner(t)
	src.deny = 1
	pod := certPod()
	h, dir := startCerts(t, src, pod)
	waitRead(t, filepath.Join(dir, "bundle.pem"), nil)
	checkCredentials(t, src, dir)
	waitEvent(t, h.rep, pod, ` Warning Denied: PodCertificateRequest ns/req-1 was denied, reason="Policy", message="not today"`)
	if n := src.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if bytes.Equal(src.requests[0].stub, src.requests[1].stub) {
		t.Error("the request after a denial is for the same key")
	}
}

// From beginRefreshAt on the node asks for a certificate for a new key
// and rewrites the files.
func TestPodCertificateRefreshed(t *testing.T) {
	src := newFakeSigner(t)
	// Renewal begins 300 ms after issuance, within 100 ms.
	src.lifetime, src.refresh = 500*time.Millisecond, 200*time.Millisecond
	pod := certPod()
	_, dir := startCerts(t, src, pod)
	bundle := filepath.Join(dir, "bundle.pem")
	first := waitRead(t, bundle, nil)
	second := waitRead(t, bundle, first)
	key1, key2 := parsePrivateKey(t, first), parsePrivateKey(t, second)
	if key1.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key2.Public()) {
		t.Error("the renewed certificate is for the same key")
	}
	if n := src.count(); n < 2 {
		t.Errorf("%d requests after renewal, want 2 or more", n)
	}
}

// Without a CertificateSource a podCertificate projection keeps its
// volume from being set up.
func TestPodCertificateWithoutSource(t *testing.T) {
	m := testManager(t, Config{})
	pod := certPod()
	if _, err := m.volumePayload(context.Background(), pod, &pod.Spec.Volumes[0], &Objects{}); err == nil {
		t.Error("volumePayload without a CertificateSource succeeded")
	}
}

// waitEvent waits for the event " Type Reason: message" about pod.
func waitEvent(t *testing.T, rep *recorder, pod *corev1.Pod, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := rep.eventsOf(pod.UID)
		for _, e := range evs {
			if e == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("events = %q, want %q", evs, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A certificate that could not be renewed is reported overdue 10 minutes
// after its refresh time, and expired after its end, each once.
func TestPodCertificateLateness(t *testing.T) {
	clk := &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	c := newCertManager(nil, clk.Now, nil)
	var events []string
	c.event = func(_ *corev1.Pod, _, reason, _ string) { events = append(events, reason) }
	cred := &credential{refreshAt: clk.Now(), notAfter: clk.Now().Add(time.Hour)}
	var late lateness
	pod := certPod()
	for _, step := range []struct {
		advance time.Duration
		want    []string
	}{
		{5 * time.Minute, nil},
		{6 * time.Minute, []string{EventCertificateOverdue}},
		{10 * time.Minute, []string{EventCertificateOverdue}},
		{time.Hour, []string{EventCertificateOverdue, EventCertificateExpired}},
		{time.Hour, []string{EventCertificateOverdue, EventCertificateExpired}},
	} {
		clk.Add(step.advance)
		late.check(c, pod, cred)
		if diff := cmp.Diff(step.want, events); diff != "" {
			t.Errorf("events at %v (-want +got):\n%s", clk.Now(), diff)
		}
	}
}
