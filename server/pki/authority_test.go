package pki_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minik-dev/minik/server/pki"
)

// ensure runs pki.Ensure in a fresh directory with logs going to t.
func ensure(t *testing.T, opts pki.Options) (*pki.Authority, string) {
	t.Helper()
	dir := t.TempDir()
	return ensureIn(t, dir, opts), dir
}

func ensureIn(t *testing.T, dir string, opts pki.Options) *pki.Authority {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if opts.Hostname == "" {
		opts.Hostname = "testhost"
	}
	a, err := pki.Ensure(dir, opts)
	if err != nil {
		t.Fatalf("Ensure(%q) = %v", dir, err)
	}
	return a
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func servingCert(t *testing.T, a *pki.Authority) *x509.Certificate {
	t.Helper()
	c, err := a.ServerTLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func TestEnsureFiles(t *testing.T) {
	_, dir := ensure(t, pki.Options{})
	tests := []struct {
		name string
		mode fs.FileMode
	}{
		{"tls", fs.ModeDir | 0o700},
		{"tls/ca.crt", 0o644},
		{"tls/ca.key", 0o600},
		{"tls/serving.crt", 0o644},
		{"tls/serving.key", 0o600},
		{"tls/admin.crt", 0o644},
		{"tls/admin.key", 0o600},
		{"tls/admin.token", 0o600},
		{"token", 0o600},
		{"admin.kubeconfig", 0o600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(dir, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tc.mode {
				t.Errorf("mode of %s = %v, want %v", tc.name, fi.Mode(), tc.mode)
			}
		})
	}
	entries, err := os.ReadDir(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestEnsureCertificates(t *testing.T) {
	a, dir := ensure(t, pki.Options{})
	ca := a.CACert()
	if !ca.IsCA {
		t.Errorf("CA certificate has IsCA = false")
	}
	if years := ca.NotAfter.Sub(ca.NotBefore).Hours() / 24 / 365; years < 9.9 {
		t.Errorf("CA valid for %.1f years, want 10", years)
	}
	if !bytes.Equal(a.CAPEM(), readFile(t, filepath.Join(dir, "tls/ca.crt"))) {
		t.Errorf("CAPEM() differs from tls/ca.crt")
	}
	admin, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls/admin.crt"), filepath.Join(dir, "tls/admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := admin.Leaf
	if leaf.Subject.CommonName != "system:admin" || !slices.Equal(leaf.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin subject = %v, want CN=system:admin O=system:masters", leaf.Subject)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: a.ClientCAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Errorf("admin certificate does not verify as a client certificate: %v", err)
	}
	cfg := a.ServerTLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs == nil {
		t.Errorf("ServerTLSConfig() = MinVersion %x ClientAuth %v ClientCAs %v", cfg.MinVersion, cfg.ClientAuth, cfg.ClientCAs)
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos = %q, want [h2 http/1.1]", cfg.NextProtos)
	}
}

func TestServingCertNames(t *testing.T) {
	a, _ := ensure(t, pki.Options{
		ServiceCIDR: "10.99.0.0/16,fd99::/112",
		SANs:        []string{"api.example.com", "192.0.2.10,Other.Example.com."},
		BindAddress: "192.0.2.77",
		Hostname:    "myhost",
	})
	roots := x509.NewCertPool()
	roots.AddCert(a.CACert())
	cert := servingCert(t, a)
	tests := []struct {
		name string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"localhost", true},
		{"myhost", true},
		{"10.99.0.1", true},
		{"fd99::1", true},
		{"kubernetes", true},
		{"kubernetes.default", true},
		{"kubernetes.default.svc", true},
		{"kubernetes.default.svc.cluster.local", true},
		{"api.example.com", true},
		{"192.0.2.10", true},
		{"other.example.com", true},
		{"192.0.2.77", true},
		{"10.43.0.1", false}, // default service CIDR replaced
		{"evil.example.com", false},
		{"192.0.2.11", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cert.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: roots})
			if got := err == nil; got != tc.ok {
				t.Errorf("Verify(DNSName: %q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
		})
	}
}

func TestServingCertHasInterfaceAddrs(t *testing.T) {
	a, _ := ensure(t, pki.Options{})
	cert := servingCert(t, a)
	addrs, err := interfaceIPs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range addrs {
		if err := cert.VerifyHostname(ip); err != nil {
			t.Errorf("serving certificate lacks interface address: %v", err)
		}
	}
	if err := cert.VerifyHostname("10.43.0.1"); err != nil {
		t.Errorf("serving certificate lacks the default service address: %v", err)
	}
}

func TestEnsureReuse(t *testing.T) {
	dir := t.TempDir()
	first := ensureIn(t, dir, pki.Options{})
	kubeconfig := readFile(t, filepath.Join(dir, "admin.kubeconfig"))
	second := ensureIn(t, dir, pki.Options{})

	if !bytes.Equal(first.CAPEM(), second.CAPEM()) {
		t.Errorf("second Ensure made a new CA")
	}
	if s1, s2 := servingCert(t, first).SerialNumber, servingCert(t, second).SerialNumber; s1.Cmp(s2) != 0 {
		t.Errorf("second Ensure made a new serving certificate (serial %v, was %v)", s2, s1)
	}
	if first.Token() != second.Token() || first.AdminToken() != second.AdminToken() {
		t.Errorf("tokens changed: %q/%q, then %q/%q", first.Token(), first.AdminToken(), second.Token(), second.AdminToken())
	}
	if got := readFile(t, filepath.Join(dir, "admin.kubeconfig")); !bytes.Equal(got, kubeconfig) {
		t.Errorf("admin kubeconfig changed on reuse")
	}

	third := ensureIn(t, dir, pki.Options{SANs: []string{"new.example.com"}})
	if !bytes.Equal(first.CAPEM(), third.CAPEM()) {
		t.Errorf("a new SAN made a new CA")
	}
	cert := servingCert(t, third)
	if cert.SerialNumber.Cmp(servingCert(t, first).SerialNumber) == 0 {
		t.Fatalf("a new SAN kept the old serving certificate")
	}
	for _, n := range []string{"new.example.com", "localhost", "kubernetes.default.svc"} {
		if err := cert.VerifyHostname(n); err != nil {
			t.Errorf("reissued serving certificate: %v", err)
		}
	}

	// Without the extra name the reissued certificate still covers it.
	fourth := ensureIn(t, dir, pki.Options{})
	if servingCert(t, fourth).SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("dropping a SAN reissued the serving certificate")
	}
}

func TestEnsureKeepsHalfCA(t *testing.T) {
	tests := []string{"ca.crt", "ca.key"}
	for _, missing := range tests {
		t.Run(missing, func(t *testing.T) {
			_, dir := ensure(t, pki.Options{})
			if err := os.Remove(filepath.Join(dir, "tls", missing)); err != nil {
				t.Fatal(err)
			}
			if _, err := pki.Ensure(dir, pki.Options{Hostname: "testhost"}); err == nil {
				t.Fatalf("Ensure with %s removed = nil, want an error", missing)
			}
			if _, err := os.Stat(filepath.Join(dir, "tls", missing)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Ensure recreated %s: %v", missing, err)
			}
		})
	}
}

func TestEnsureReplacesDamagedLeaf(t *testing.T) {
	dir := t.TempDir()
	first := ensureIn(t, dir, pki.Options{})
	if err := os.WriteFile(filepath.Join(dir, "tls/serving.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "tls/admin.key")); err != nil {
		t.Fatal(err)
	}
	second := ensureIn(t, dir, pki.Options{})
	if !bytes.Equal(first.CAPEM(), second.CAPEM()) {
		t.Errorf("damaged leaves made a new CA")
	}
	if servingCert(t, first).SerialNumber.Cmp(servingCert(t, second).SerialNumber) == 0 {
		t.Errorf("damaged serving key kept the old certificate")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls/admin.crt"), filepath.Join(dir, "tls/admin.key")); err != nil {
		t.Errorf("admin key pair after repair: %v", err)
	}
}

func TestSignClientCert(t *testing.T) {
	a, _ := ensure(t, pki.Options{})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pki.PublicKeyFromCSR(csrDER)
	if err != nil {
		t.Fatalf("PublicKeyFromCSR = %v", err)
	}
	certPEM, err := a.SignClientCert("system:node:n1", []string{"system:nodes"}, pub, 0)
	if err != nil {
		t.Fatalf("SignClientCert = %v", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, pemBlock("EC PRIVATE KEY", keyDER))
	if err != nil {
		t.Fatalf("signed certificate does not pair with the CSR key: %v", err)
	}
	leaf := pair.Leaf
	if leaf.Subject.CommonName != "system:node:n1" || !slices.Equal(leaf.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject = %v, want CN=system:node:n1 O=system:nodes", leaf.Subject)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.ClientCAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("node certificate does not verify: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.ClientCAPool()}); err == nil {
		t.Errorf("node certificate verifies as a server certificate")
	}
	if leaf.NotAfter.After(a.CACert().NotAfter) {
		t.Errorf("node certificate outlives the CA")
	}

	if _, err := a.SignClientCert("", nil, pub, 0); err == nil {
		t.Errorf("SignClientCert with empty CN = nil error")
	}
	// A requested certificate lasts at most RequestBackdate longer than
	// asked; a node's is backdated further.
	for _, tc := range []struct {
		sign func(string, []string, crypto.PublicKey, time.Duration) ([]byte, error)
		want time.Duration
	}{{a.SignRequestedClientCert, time.Hour + pki.RequestBackdate}, {a.SignClientCert, time.Hour + 15*time.Minute}} {
		certPEM, err := tc.sign("alice", nil, pub, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(certPEM)
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.NotAfter.Sub(c.NotBefore); got != tc.want {
			t.Errorf("validity of an hour's certificate = %v, want %v", got, tc.want)
		}
	}
	bad := slices.Clone(csrDER)
	bad[len(bad)-3] ^= 0xff // corrupt the signature
	if _, err := pki.PublicKeyFromCSR(bad); err == nil {
		t.Errorf("PublicKeyFromCSR(corrupted) = nil error")
	}
	if _, err := pki.PublicKeyFromCSR(pemBlock("CERTIFICATE REQUEST", csrDER)); err != nil {
		t.Errorf("PublicKeyFromCSR(PEM) = %v", err)
	}
}
