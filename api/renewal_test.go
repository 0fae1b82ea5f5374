package api

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestRenewalTime(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		life time.Duration
		want time.Time
	}{
		{"one minute", 90 * time.Second, start.Add(time.Minute)},
		{"one year", 3 * 365 * 24 * time.Hour, start.Add(2 * 365 * 24 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert := &x509.Certificate{NotBefore: start, NotAfter: start.Add(tc.life)}
			if got := RenewalTime(cert); !got.Equal(tc.want) {
				t.Errorf("RenewalTime(%v..%v) = %v, want %v", cert.NotBefore, cert.NotAfter, got, tc.want)
			}
		})
	}
}
