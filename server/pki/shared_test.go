package pki_test

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/pki"
)

func TestSealUnseal(t *testing.T) {
	a, _ := ensure(t, pki.Options{})
	sh := a.Shared()
	data, err := pki.Seal(sh)
	if err != nil {
		t.Fatalf("Seal = %v", err)
	}
	for _, secret := range [][]byte{sh.CAKey, []byte(sh.TokenSecret), []byte(sh.AdminToken)} {
		if bytes.Contains(data, secret) {
			t.Errorf("sealed data holds a secret in the clear")
		}
	}
	if h, err := pki.SealedCAHash(data); err != nil || h != api.CAHash(a.CAPEM()) {
		t.Errorf("SealedCAHash = %q, %v; want %q", h, err, api.CAHash(a.CAPEM()))
	}
	tests := []struct {
		name   string
		secret string
		want   error
	}{
		{"right secret", sh.TokenSecret, nil},
		{"wrong secret", sh.TokenSecret + "x", pki.ErrWrongToken},
		{"empty secret", "", api.ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pki.Unseal(data, tc.secret)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unseal = %v, want %v", err, tc.want)
			}
			if err == nil && (!bytes.Equal(got.CAKey, sh.CAKey) || got.TokenSecret != sh.TokenSecret || got.AdminToken != sh.AdminToken) {
				t.Errorf("Unseal returned other credentials than were sealed")
			}
		})
	}
}

func TestUnsealTampered(t *testing.T) {
	a, _ := ensure(t, pki.Options{})
	data, err := pki.Seal(a.Shared())
	if err != nil {
		t.Fatal(err)
	}
	// Another CA hash in clear must not pass as the sealed one.
	other := strings.Replace(string(data), api.CAHash(a.CAPEM()), strings.Repeat("0", 64), 1)
	if _, err := pki.Unseal([]byte(other), a.TokenSecret()); !errors.Is(err, pki.ErrWrongToken) {
		t.Errorf("Unseal(tampered hash) = %v, want %v", err, pki.ErrWrongToken)
	}
	// An iteration count past the bound is refused before any key is
	// derived (a huge one would stall the server's start).
	costly := strings.Replace(string(data), `"iterations":600000`, `"iterations":6000001`, 1)
	if costly == string(data) {
		t.Fatalf("sealed data without the expected iteration count: %s", data)
	}
	if _, err := pki.Unseal([]byte(costly), a.TokenSecret()); err == nil || errors.Is(err, pki.ErrWrongToken) || !strings.Contains(err.Error(), "iterations") {
		t.Errorf("Unseal(6,000,001 iterations) = %v, want it refused for its iteration count", err)
	}
}

// The servers of a cluster open sealed data with the CA they hold, whatever
// token sealed it; another CA does not open it, and data sealed for token
// holders only says so.
func TestUnsealForServer(t *testing.T) {
	a, _ := ensure(t, pki.Options{})
	other, _ := ensure(t, pki.Options{})
	sh := a.Shared()
	data, err := pki.Seal(sh)
	if err != nil {
		t.Fatal(err)
	}
	if !pki.SealedForServers(data) {
		t.Fatalf("SealedForServers(Seal(...)) = false")
	}
	legacy := strings.Replace(string(data), `"serverCiphertext"`, `"unknownField"`, 1)
	otherSh := other.Shared()
	tests := []struct {
		name          string
		data          []byte
		caCert, caKey []byte
		want          error // nil: opens
	}{
		{"the cluster's CA", data, sh.CACert, sh.CAKey, nil},
		{"another CA", data, otherSh.CACert, otherSh.CAKey, pki.ErrWrongCA},
		{"data sealed for token holders only", []byte(legacy), sh.CACert, sh.CAKey, pki.ErrNotSealedForServers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pki.UnsealForServer(tc.data, tc.caCert, tc.caKey)
			if !errors.Is(err, tc.want) {
				t.Fatalf("UnsealForServer = %v, want %v", err, tc.want)
			}
			if err == nil && (!bytes.Equal(got.CAKey, sh.CAKey) || got.TokenSecret != sh.TokenSecret || got.AdminToken != sh.AdminToken) {
				t.Errorf("UnsealForServer returned other credentials than were sealed")
			}
		})
	}
	// The cluster's certificate with a key not its own is refused before
	// anything is decrypted.
	if _, err := pki.UnsealForServer(data, sh.CACert, otherSh.CAKey); err == nil {
		t.Errorf("UnsealForServer(the CA's certificate, another key) = nil, want an error")
	}
	if pki.SealedForServers([]byte(legacy)) {
		t.Errorf("SealedForServers(data without the servers' part) = true")
	}
}

// A second server that installs the first one's shared credentials has the
// same CA, token and admin token, and its own serving certificate from
// that CA.
func TestInstallShared(t *testing.T) {
	first, _ := ensure(t, pki.Options{})
	dir := t.TempDir()
	if err := pki.Install(dir, first.Shared()); err != nil {
		t.Fatalf("Install = %v", err)
	}
	second := ensureIn(t, dir, pki.Options{SANs: []string{"10.9.9.9"}})
	if !bytes.Equal(second.CAPEM(), first.CAPEM()) {
		t.Errorf("second server's CA differs from the first's")
	}
	if second.Token() != first.Token() || second.AdminToken() != first.AdminToken() {
		t.Errorf("second server's tokens = %q, %q; want %q, %q", second.Token(), second.AdminToken(), first.Token(), first.AdminToken())
	}
	leaf := servingCert(t, second)
	if err := leaf.CheckSignatureFrom(first.CACert()); err != nil {
		t.Errorf("second serving certificate not from the shared CA: %v", err)
	}
	if !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.String() == "10.9.9.9" }) {
		t.Errorf("second serving certificate lacks its own SAN 10.9.9.9: %v", leaf.IPAddresses)
	}
	if bytes.Equal(leaf.Raw, servingCert(t, first).Raw) {
		t.Errorf("second server reuses the first's serving certificate")
	}
	bad := first.Shared()
	bad.CAKey = second.Shared().CACert
	if err := pki.Install(t.TempDir(), bad); err == nil {
		t.Errorf("Install(CA without its key) = nil, want an error")
	}
}
