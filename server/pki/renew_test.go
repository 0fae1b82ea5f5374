package pki

import (
	"bytes"
	"log/slog"
	"testing"
	"time"
)

// setClock makes Ensure see the time as offset from now.
func setClock(t *testing.T, offset time.Duration) {
	t.Helper()
	t.Cleanup(func() { now = time.Now })
	now = func() time.Time { return time.Now().Add(offset) }
}

func TestEnsureRenewsLeaves(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Hostname: "testhost", Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	first, err := Ensure(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		offset    time.Duration
		wantRenew bool
	}{
		{"well before expiry", LeafValidity - RenewBefore - 24*time.Hour, false},
		{"near expiry", LeafValidity - RenewBefore + 24*time.Hour, true},
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
			gotServing := a.serving.cert.SerialNumber.Cmp(first.serving.cert.SerialNumber) != 0
			gotAdmin := a.admin.cert.SerialNumber.Cmp(first.admin.cert.SerialNumber) != 0
			if gotServing != tc.wantRenew || gotAdmin != tc.wantRenew {
				t.Errorf("renewed serving %v, admin %v; want %v", gotServing, gotAdmin, tc.wantRenew)
			}
			if tc.wantRenew && !a.serving.cert.NotAfter.After(now().Add(RenewBefore)) {
				t.Errorf("renewed serving certificate expires %v, too soon", a.serving.cert.NotAfter)
			}
		})
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
