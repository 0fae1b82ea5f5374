package pki_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/minik-dev/minik/server/pki"
)

func TestFrontProxyCredentials(t *testing.T) {
	a, _ := ensure(t, pki.Options{})
	cert, err := a.FrontProxyClientCertificate(nil)
	if err != nil || cert == nil || cert.Leaf == nil {
		t.Fatalf("FrontProxyClientCertificate = %v, %v", cert, err)
	}
	leaf := cert.Leaf
	if leaf.Subject.CommonName != pki.FrontProxyClientName {
		t.Errorf("front-proxy client CN = %q, want %q", leaf.Subject.CommonName, pki.FrontProxyClientName)
	}
	verify := func(ca *x509.Certificate) error {
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err
	}
	if err := verify(a.FrontProxyCACert()); err != nil {
		t.Errorf("front-proxy client certificate does not verify against the front-proxy CA: %v", err)
	}
	if err := verify(a.CACert()); err == nil {
		t.Errorf("front-proxy client certificate verifies against the cluster CA; the two CAs must differ")
	}
	block, _ := pem.Decode(a.FrontProxyCAPEM())
	if block == nil || !bytes.Equal(block.Bytes, a.FrontProxyCACert().Raw) {
		t.Errorf("FrontProxyCAPEM does not hold the front-proxy CA")
	}
	// The API server's listener verifies certificates of both CAs.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.ServerTLSConfig().ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the server's ClientCAs refuse the front-proxy client certificate: %v", err)
	}
}

func TestFrontProxyCAShared(t *testing.T) {
	first, _ := ensure(t, pki.Options{})
	dir := t.TempDir()
	if err := pki.Install(dir, first.Shared()); err != nil {
		t.Fatalf("Install = %v", err)
	}
	second := ensureIn(t, dir, pki.Options{})
	if !bytes.Equal(second.FrontProxyCAPEM(), first.FrontProxyCAPEM()) {
		t.Errorf("second server's front-proxy CA differs from the first's")
	}
	cert, _ := second.FrontProxyClientCertificate(nil)
	if err := cert.Leaf.CheckSignatureFrom(first.FrontProxyCACert()); err != nil {
		t.Errorf("second server's front-proxy client certificate is not from the shared CA: %v", err)
	}
	// Data sealed before the front-proxy CA was shared installs without it.
	old := first.Shared()
	old.FrontProxyCACert, old.FrontProxyCAKey = nil, nil
	dir = t.TempDir()
	if err := pki.Install(dir, old); err != nil {
		t.Fatalf("Install(without front-proxy CA) = %v", err)
	}
	third := ensureIn(t, dir, pki.Options{})
	if bytes.Equal(third.FrontProxyCAPEM(), first.FrontProxyCAPEM()) {
		t.Errorf("third server got a front-proxy CA it was not given")
	}
	bad := first.Shared()
	bad.FrontProxyCAKey = first.Shared().CAKey
	if err := pki.Install(t.TempDir(), bad); err == nil {
		t.Errorf("Install(front-proxy CA with another key) = nil, want an error")
	}
}
