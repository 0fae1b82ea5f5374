// Package pkitest helps tests serve with a pki.Authority's TLS
// configuration.
package pkitest

import (
	"crypto/tls"
	"net/http/httptest"
)

// StartTLS starts the unstarted srv on TLS with cfg, as srv.StartTLS
// would, except that cfg's GetCertificate picks the certificate:
// httptest's StartTLS puts a certificate of its own in front of it. srv.URL
// is the https URL; srv.Client is not set up for it.
func StartTLS(srv *httptest.Server, cfg *tls.Config) {
	srv.TLS = cfg
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Start()
	srv.URL = "https://" + srv.Listener.Addr().String()
}
