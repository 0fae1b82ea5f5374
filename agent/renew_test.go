package agent

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/minik-dev/minik/api"
)

// TestRenewCertificate: a joined agent renews its certificate over its
// connection without a valid join token, keeps it in the data directory
// and presents it on new connections, while the old connection goes on.
func TestRenewCertificate(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	a := newAgent(t, c, c.ca.Token(), dir)
	j, err := a.join(ctxT(t), c.url)
	if err != nil {
		t.Fatalf("join() = %v", err)
	}
	defer j.conn.Close()
	old := a.cert.get()
	certPath := filepath.Join(dir, "tls", certFile)
	oldPEM, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}

	a.cfg.Token = "not-the-token" // rotated since the node joined
	if err := a.renewOnce(ctxT(t), j.conn, filepath.Join(dir, "tls")); err != nil {
		t.Fatalf("renewOnce() = %v", err)
	}
	renewed := a.cert.get()
	if renewed.Leaf.Equal(old.Leaf) {
		t.Fatalf("renewOnce() kept the old certificate")
	}
	if cn := renewed.Leaf.Subject.CommonName; cn != "system:node:n1" {
		t.Errorf("renewed certificate for %q, want system:node:n1", cn)
	}
	if got, err := os.ReadFile(certPath); err != nil || bytes.Equal(got, oldPEM) {
		t.Errorf("the data directory keeps the old certificate (%v)", err)
	}
	presented, err := a.cert.getClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil || !presented.Leaf.Equal(renewed.Leaf) {
		t.Errorf("new connections present %v (%v), want the renewed certificate", presented.Leaf.SerialNumber, err)
	}
	// The session's connection, opened with the old certificate, still
	// serves the node.
	if _, err := api.NewNodeClient(j.conn).Config(ctxT(t), &api.ConfigRequest{}); err != nil {
		t.Errorf("Config() on the old connection = %v", err)
	}
	// A restarted agent keeps the renewed certificate.
	if kept, ok := a.keptCert(filepath.Join(dir, "tls"), rootsOf(t, c)); !ok || !kept.Leaf.Equal(renewed.Leaf) {
		t.Errorf("keptCert() = %v; want the renewed certificate", ok)
	}
}

// rootsOf is a pool holding c's CA.
func rootsOf(t *testing.T, c *cluster) *x509.CertPool {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(c.ca.CACert())
	return roots
}
