package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"time"
)

// The front proxy is the API server proxying a request to an aggregated
// API server (an APIService with a Service): it presents the front-proxy
// client certificate, issued by a CA of its own, and names the user it
// authenticated in request headers, which the aggregated server trusts
// because of that certificate (requestheader authentication). The CA is
// apart from the cluster CA, so that no certificate of the cluster CA can
// assert another user's name through headers, and the other way round.

// FrontProxyClientName is the common name of the front-proxy client
// certificate, the one name aggregated servers allow to set the request
// headers (requestheader-allowed-names).
const FrontProxyClientName = "front-proxy-client"

// Files of the front proxy under TLSDir.
const (
	frontProxyCAFile   = "front-proxy-ca"     // .crt, .key
	frontProxyLeafFile = "front-proxy-client" // .crt, .key
)

// ensureFrontProxyCA loads the front-proxy CA from dir, creating it when
// missing. Like the cluster CA it is never replaced.
func ensureFrontProxyCA(dir string, lg *slog.Logger) (*keyPair, error) {
	certFile := filepath.Join(dir, frontProxyCAFile+".crt")
	keyFile := filepath.Join(dir, frontProxyCAFile+".key")
	ca, err := loadKeyPair(certFile, keyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		spec := certSpec{commonName: fmt.Sprintf("minik-front-proxy-ca@%d", now().Unix()), isCA: true, validity: CAValidity}
		if ca, err = newKeyPair(spec, nil, now()); err != nil {
			return nil, err
		}
		if err := ca.save(certFile, keyFile); err != nil {
			return nil, err
		}
		lg.Info("generated front-proxy CA", "path", certFile, "expires", ca.cert.NotAfter)
		return ca, nil
	case err != nil:
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	case !ca.cert.IsCA:
		return nil, fmt.Errorf("front-proxy CA %s is not a CA certificate", certFile)
	case now().After(ca.cert.NotAfter):
		return nil, fmt.Errorf("front-proxy CA %s expired at %s", certFile, ca.cert.NotAfter)
	}
	return ca, nil
}

// ensureFrontProxyClient returns the front-proxy client certificate,
// issuing a new one like ensureAdmin does.
func ensureFrontProxyClient(dir string, ca *keyPair, lifetime time.Duration, lg *slog.Logger) (*keyPair, error) {
	certFile := filepath.Join(dir, frontProxyLeafFile+".crt")
	keyFile := filepath.Join(dir, frontProxyLeafFile+".key")
	old, err := loadKeyPair(certFile, keyFile)
	reason := renewReason(old, err, ca)
	if reason == "" && old.cert.Subject.CommonName != FrontProxyClientName {
		reason = "wrong subject"
	}
	if reason == "" {
		return old, nil
	}
	spec := certSpec{
		commonName: FrontProxyClientName,
		usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		validity:   lifetime,
	}
	kp, err := newKeyPair(spec, ca, now())
	if err != nil {
		return nil, err
	}
	if err := kp.save(certFile, keyFile); err != nil {
		return nil, err
	}
	lg.Info("issued front-proxy client certificate", "reason", reason, "expires", kp.cert.NotAfter)
	return kp, nil
}

// FrontProxyCAPEM returns a copy of the front-proxy CA certificate PEM,
// what aggregated servers verify the front proxy's client certificate
// with (requestheader-client-ca-file).
func (a *Authority) FrontProxyCAPEM() []byte { return slices.Clone(a.frontProxyCA.certPEM) }

// FrontProxyCACert returns the parsed front-proxy CA certificate. Callers
// must not modify it.
func (a *Authority) FrontProxyCACert() *x509.Certificate { return a.frontProxyCA.cert }

// FrontProxyClientCertificate returns the current front-proxy client
// certificate with its key, for tls.Config.GetClientCertificate: a
// renewed one is used from the next handshake on. It never fails.
func (a *Authority) FrontProxyClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return a.cur.Load().frontProxyTLS, nil
}
