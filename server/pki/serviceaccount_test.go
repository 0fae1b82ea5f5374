package pki_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/minik-dev/minik/server/pki"
)

// The service account key is created once (0600) and kept across starts.
func TestServiceAccountKeyKept(t *testing.T) {
	a, dir := ensure(t, pki.Options{})
	if a.ServiceAccountKey() == nil || a.ServiceAccountKey().N.BitLen() != 2048 {
		t.Fatalf("ServiceAccountKey = %v, want an RSA 2048 key", a.ServiceAccountKey())
	}
	path := filepath.Join(dir, pki.TLSDir, pki.ServiceAccountKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode = %v, want 0600", path, fi.Mode().Perm())
	}
	again := ensureIn(t, dir, pki.Options{})
	if !again.ServiceAccountKey().Equal(a.ServiceAccountKey()) {
		t.Errorf("a restart generated another service account key")
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Ensure(dir, pki.Options{Hostname: "testhost"}); err == nil {
		t.Errorf("Ensure with a damaged service account key = nil, want an error")
	}
}

// Servers of one cluster share the service account key through the sealed
// bootstrap data, so each accepts the tokens the others sign.
func TestServiceAccountKeyShared(t *testing.T) {
	first, _ := ensure(t, pki.Options{})
	data, err := pki.Seal(first.Shared())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, first.Shared().ServiceAccountKey) {
		t.Errorf("sealed data holds the service account key in the clear")
	}
	sh, err := pki.Unseal(data, first.TokenSecret())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pki.Install(dir, sh); err != nil {
		t.Fatalf("Install = %v", err)
	}
	second := ensureIn(t, dir, pki.Options{})
	if !second.ServiceAccountKey().Equal(first.ServiceAccountKey()) {
		t.Errorf("second server's service account key differs from the first's")
	}
	bad := first.Shared()
	bad.ServiceAccountKey = []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	if err := pki.Install(t.TempDir(), bad); err == nil {
		t.Errorf("Install(damaged service account key) = nil, want an error")
	}
}
