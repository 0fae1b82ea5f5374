package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/api"
)

// setClock makes Ensure see the time as offset from now.
func setClock(t *testing.T, offset time.Duration) {
	t.Helper()
	t.Cleanup(func() { now = time.Now })
	now = func() time.Time { return time.Now().Add(offset) }
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func TestEnsureRenewsLeaves(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Hostname: "testhost", Logger: testLogger(t)}
	first, err := Ensure(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	firstCur := first.cur.Load()
	renewAt := api.RenewalTime(firstCur.serving.cert).Sub(time.Now())
	tests := []struct {
		name      string
		offset    time.Duration
		wantRenew bool
	}{
		{"before the renewal time", renewAt - 24*time.Hour, false},
		{"past the renewal time", renewAt + 24*time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setClock(t, tc.offset)
			a, err := Ensure(dir, opts)
			if err != nil {
				t.Fatalf("Ensure = %v", err)
			}
			if !bytes.Equal(a.CAPEM(), first.CAPEM()) {
				t.Errorf("Ensure replaced the CA")
			}
			cur := a.cur.Load()
			gotServing := !cur.serving.cert.Equal(firstCur.serving.cert)
			gotAdmin := !cur.admin.cert.Equal(firstCur.admin.cert)
			if gotServing != tc.wantRenew || gotAdmin != tc.wantRenew {
				t.Errorf("renewed serving %v, admin %v; want %v", gotServing, gotAdmin, tc.wantRenew)
			}
			if tc.wantRenew && !api.RenewalTime(cur.serving.cert).After(now()) {
				t.Errorf("renewed serving certificate is due at %v already", api.RenewalTime(cur.serving.cert))
			}
		})
	}
}

// servedCert is the certificate the TLS configuration serves to a new
// connection.
func servedCert(t *testing.T, cfg *tls.Config) *x509.Certificate {
	t.Helper()
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatalf("GetCertificate = %v", err)
	}
	return c.Leaf
}

// kubeconfigCert is the admin client certificate in the kubeconfig at path.
func kubeconfigCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCertPEM(cfg.AuthInfos[KubeconfigUser].ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestRefreshRenewsAtTwoThirds(t *testing.T) {
	const lifetime = time.Minute
	dir := t.TempDir()
	a, err := Ensure(dir, Options{Hostname: "testhost", LeafLifetime: lifetime, Port: 7443, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := a.ServerTLSConfig()
	first := servedCert(t, tlsCfg)
	if got := first.NotAfter.Sub(now()); got > lifetime || got < lifetime-2*time.Second {
		t.Fatalf("serving certificate lives %v, want %v", got, lifetime)
	}
	firstAdmin := kubeconfigCert(t, a.KubeconfigPath())

	setClock(t, 30*time.Second) // before 2/3 of 75s (60s plus 15s backdating)
	if _, err := a.Refresh(); err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if got := servedCert(t, tlsCfg); !got.Equal(first) {
		t.Errorf("Refresh at 30s replaced the serving certificate")
	}

	setClock(t, 40*time.Second)
	if _, err := a.Refresh(); err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	renewed := servedCert(t, tlsCfg)
	if renewed.Equal(first) {
		t.Fatalf("Refresh at 40s kept the serving certificate due at %v", api.RenewalTime(first))
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed serving certificate expires %v, not after the old one's %v", renewed.NotAfter, first.NotAfter)
	}
	admin := kubeconfigCert(t, a.KubeconfigPath())
	if admin.Equal(firstAdmin) {
		t.Errorf("the kubeconfig kept the old admin certificate")
	}
	if _, err := admin.Verify(x509.VerifyOptions{Roots: a.ClientCAPool(), CurrentTime: now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("renewed admin certificate does not verify: %v", err)
	}
	if d := a.nextCheck(); d <= 0 || d > lifetime/6 {
		t.Errorf("nextCheck = %v, want in (0, %v]", d, lifetime/6)
	}
}

func TestRefreshPicksUpRotation(t *testing.T) {
	dir := t.TempDir()
	a, err := Ensure(dir, Options{Hostname: "testhost", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := a.ServerTLSConfig()
	oldServing, oldToken := servedCert(t, tlsCfg), a.Token()
	if err := Rotate(dir, 0, testLogger(t)); err != nil {
		t.Fatalf("Rotate = %v", err)
	}
	// The kubeconfig's server URL stays; its client certificate is new.
	cfg, err := clientcmd.LoadFromFile(a.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Clusters[KubeconfigCluster].Server, ServerURL("", 0); got != want {
		t.Errorf("kubeconfig server after Rotate = %q, want %q", got, want)
	}
	newToken, err := RotateToken(dir)
	if err != nil {
		t.Fatalf("RotateToken = %v", err)
	}
	tokenChanged, err := a.Refresh()
	if err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if !tokenChanged || a.Token() != newToken || a.Token() == oldToken {
		t.Errorf("after RotateToken, Refresh = %v and Token() = %q; want true and %q", tokenChanged, a.Token(), newToken)
	}
	served := servedCert(t, tlsCfg)
	if served.Equal(oldServing) {
		t.Errorf("Refresh after Rotate serves the old certificate")
	}
	if !served.Equal(certFile(t, filepath.Join(dir, TLSDir, "serving.crt"))) {
		t.Errorf("served certificate is not the one Rotate wrote")
	}
	if err := served.VerifyHostname("testhost"); err != nil {
		t.Errorf("rotated serving certificate lost a name: %v", err)
	}
	if !kubeconfigCert(t, a.KubeconfigPath()).Equal(a.cur.Load().admin.cert) {
		t.Errorf("kubeconfig and Authority hold different admin certificates")
	}
}

// certFile parses the certificate PEM file at path.
func certFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	kp, err := loadKeyPair(path, path[:len(path)-len(".crt")]+".key")
	if err != nil {
		t.Fatal(err)
	}
	return kp.cert
}

func TestCheckListsCertificates(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, Options{Hostname: "testhost", LeafLifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	certs, err := Check(dir)
	if err != nil {
		t.Fatalf("Check = %v", err)
	}
	var names []string
	for _, c := range certs {
		names = append(names, c.Name)
		isCA := c.Name == "ca" || c.Name == "front-proxy-ca"
		if !isCA && c.NotAfter.Sub(time.Now()) > time.Hour {
			t.Errorf("%s expires %v, past the one-hour lifetime", c.Name, c.NotAfter)
		}
		if isCA {
			if !c.RenewAt.IsZero() {
				t.Errorf("%s renews at %v; a CA is never renewed", c.Name, c.RenewAt)
			}
			continue
		}
		if !c.RenewAt.Before(c.NotAfter) {
			t.Errorf("%s renews at %v, not before it expires at %v", c.Name, c.RenewAt, c.NotAfter)
		}
	}
	if diff := cmp.Diff([]string{"ca", "serving", "admin", "front-proxy-ca", "front-proxy-client"}, names); diff != "" {
		t.Errorf("Check names (-want +got):\n%s", diff)
	}
}

func TestEnsureRefusesExpiredCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, Options{Hostname: "testhost"}); err != nil {
		t.Fatal(err)
	}
	setClock(t, CAValidity+24*time.Hour)
	if _, err := Ensure(dir, Options{Hostname: "testhost"}); err == nil {
		t.Errorf("Ensure with an expired CA = nil error")
	}
}

func TestSignClientCertCappedByCA(t *testing.T) {
	a, err := Ensure(t.TempDir(), Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := a.SignClientCert("system:node:n1", []string{"system:nodes"}, key.Public(), 2*CAValidity)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.NotAfter.After(a.ca.cert.NotAfter) {
		t.Errorf("NotAfter = %v, past the CA's %v", cert.NotAfter, a.ca.cert.NotAfter)
	}
}

// Run picks up a token rotated on disk and tells its caller.
func TestRunReportsRotatedToken(t *testing.T) {
	dir := t.TempDir()
	a, err := Ensure(dir, Options{Hostname: "testhost", LeafLifetime: 6 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	tok, err := RotateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not report the rotated token")
	}
	if a.Token() != tok {
		t.Errorf("Token() = %q, want the rotated %q", a.Token(), tok)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// BenchmarkRefreshUnchanged is the cost of Run's periodic look at the
// data directory when nothing changed.
func BenchmarkRefreshUnchanged(b *testing.B) {
	a, err := Ensure(b.TempDir(), Options{Hostname: "testhost"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := a.Refresh(); err != nil {
			b.Fatal(err)
		}
	}
}
