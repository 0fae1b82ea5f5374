package api

import (
	"crypto/x509"
	"time"
)

// RenewalTime is when a certificate of the cluster (a node's client
// certificate, a server's serving or admin certificate) is due for
// renewal: two thirds of the way from its NotBefore to its NotAfter. The
// issuer backdates NotBefore a little for clock skew, which moves the
// point only slightly earlier; the holder renews while a third of the
// lifetime is left to retry in.
func RenewalTime(cert *x509.Certificate) time.Time {
	span := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(span / 3 * 2)
}
