package pki

import (
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/defaults"
)

// Defaults for Options fields left zero.
const (
	// DefaultPort is the HTTPS port of the API server.
	DefaultPort = 6443
	// DefaultServiceCIDR is the service network, whose first address is
	// the cluster IP of the "kubernetes" service.
	DefaultServiceCIDR = defaults.ServiceCIDR
)

// Validity periods of the certificates Ensure issues.
const (
	// CAValidity is the lifetime of a new CA.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is the default lifetime of serving and client
	// certificates (Options.LeafLifetime). Each is renewed at
	// api.RenewalTime, two thirds into its lifetime.
	LeafValidity = 365 * 24 * time.Hour
)

// Identity of the admin client certificate.
const (
	// AdminUser is the common name of the admin certificate.
	AdminUser = "system:admin"
	// AdminGroup is the organization of the admin certificate, the group
	// allowed everything.
	AdminGroup = "system:masters"
)

// Files written under the data directory.
const (
	// TLSDir is the directory, relative to the data directory, that holds
	// ca.crt, ca.key, serving.crt, serving.key, admin.crt, admin.key,
	// admin.token and service-account.key.
	TLSDir = "tls"
	// KubeconfigFile is the admin kubeconfig, relative to the data directory.
	KubeconfigFile = "admin.kubeconfig"
	// TokenFile is the join token, relative to the data directory.
	TokenFile = "token"
	// AdminTokenFile is the admin bearer token, relative to TLSDir.
	AdminTokenFile = "admin.token"
)

// now is the clock; tests replace it.
var now = time.Now

// Options configure Ensure. The zero value is valid.
type Options struct {
	// ServiceCIDR is the service network (--service-cidr), possibly a
	// comma-separated dual-stack pair. Its first address is a SAN of the
	// serving certificate. Empty means DefaultServiceCIDR.
	ServiceCIDR string
	// SANs are extra names or IP addresses for the serving certificate
	// (--tls-san). An entry may hold several, separated by commas.
	SANs []string
	// Port is the HTTPS port written into the kubeconfig. Zero means
	// DefaultPort.
	Port int
	// BindAddress is the address the API server listens on. A specific
	// address replaces 127.0.0.1 in the kubeconfig and is added to the SANs.
	BindAddress string
	// Token is the --token flag: a plain secret, or a full join token whose
	// CA hash must match the CA. Empty keeps the stored (or a new) secret.
	Token string
	// Hostname is the host name SAN. Empty means os.Hostname.
	Hostname string
	// LeafLifetime is the lifetime of the serving, admin and node
	// certificates issued from now on. Zero means LeafValidity.
	LeafLifetime time.Duration
	// Logger receives lifecycle messages. Nil discards them.
	Logger *slog.Logger
}

func (o Options) leafLifetime() time.Duration {
	if o.LeafLifetime <= 0 {
		return LeafValidity
	}
	return o.LeafLifetime
}

func (o Options) serviceCIDR() string {
	if o.ServiceCIDR == "" {
		return DefaultServiceCIDR
	}
	return o.ServiceCIDR
}

// Authority is the cluster's certificate authority with the server's
// serving certificate, the admin credentials and the join token. The CA,
// the admin bearer token and the service account key are fixed at Ensure;
// the serving and admin certificates and the join token are replaced by
// Refresh (see Run). It is safe for concurrent use.
type Authority struct {
	ca           *keyPair
	caPool       *x509.CertPool
	frontProxyCA *keyPair
	adminToken   string
	kubeconfig   string
	saKey        *rsa.PrivateKey
	saKeyPEM     []byte

	dataDir   string
	want      sans   // names the serving certificate must carry
	serverURL string // of the kubeconfig
	lifetime  time.Duration
	lg        *slog.Logger

	refreshMu sync.Mutex // serializes Refresh
	cur       atomic.Pointer[credentials]
}

// credentials are the parts of an Authority that change while it runs.
// They are never modified once published.
type credentials struct {
	serving, admin, frontProxy *keyPair
	servingTLS, frontProxyTLS  *tls.Certificate
	token, secret              string
}

// Ensure loads the cluster's credentials from dataDir, creating what is
// missing, and writes dataDir/admin.kubeconfig and dataDir/token (see
// TLSDir for the files under dataDir/tls). On a later start it reuses the
// CA, the token secret and the admin token; it issues a new serving
// certificate when one of the required SANs is missing (keeping the old
// SANs, so names only accumulate) or it is due for renewal
// (api.RenewalTime), and a new admin certificate when it is due. It
// refuses to run with half of the CA (a certificate without its key or the
// reverse) or an expired CA, since replacing the CA would lock out every
// node.
func Ensure(dataDir string, opts Options) (*Authority, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "pki")
	tlsDir := filepath.Join(dataDir, TLSDir)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, err
	}
	a := &Authority{
		kubeconfig: filepath.Join(dataDir, KubeconfigFile),
		dataDir:    dataDir,
		serverURL:  ServerURL(opts.BindAddress, opts.Port),
		lifetime:   opts.leafLifetime(),
		lg:         lg,
	}
	var err error
	if a.ca, err = ensureCA(tlsDir, lg); err != nil {
		return nil, err
	}
	a.caPool = x509.NewCertPool()
	a.caPool.AddCert(a.ca.cert)
	if a.frontProxyCA, err = ensureFrontProxyCA(tlsDir, lg); err != nil {
		return nil, err
	}
	if a.want, err = requiredSANs(opts); err != nil {
		return nil, err
	}
	if a.adminToken, err = ensureSecretFile(filepath.Join(tlsDir, AdminTokenFile)); err != nil {
		return nil, err
	}
	if a.saKey, a.saKeyPEM, err = ensureServiceAccountKey(filepath.Join(tlsDir, ServiceAccountKeyFile), lg); err != nil {
		return nil, err
	}
	if _, err := a.refresh(opts.Token); err != nil {
		return nil, err
	}
	return a, nil
}

func ensureCA(dir string, lg *slog.Logger) (*keyPair, error) {
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	ca, err := loadKeyPair(certFile, keyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		spec := certSpec{commonName: fmt.Sprintf("minik-ca@%d", now().Unix()), isCA: true, validity: CAValidity}
		if ca, err = newKeyPair(spec, nil, now()); err != nil {
			return nil, err
		}
		if err := ca.save(certFile, keyFile); err != nil {
			return nil, err
		}
		lg.Info("generated cluster CA", "path", certFile, "expires", ca.cert.NotAfter)
		return ca, nil
	case err != nil:
		return nil, fmt.Errorf("cluster CA: %w", err)
	case !ca.cert.IsCA:
		return nil, fmt.Errorf("cluster CA %s is not a CA certificate", certFile)
	case now().After(ca.cert.NotAfter):
		return nil, fmt.Errorf("cluster CA %s expired at %s", certFile, ca.cert.NotAfter)
	}
	return ca, nil
}

// ensureServing returns the serving certificate, issuing a new one when
// the stored one is missing, unusable, not from ca, due for renewal or
// short of a name in want.
func ensureServing(dir string, ca *keyPair, want sans, lifetime time.Duration, lg *slog.Logger) (*keyPair, error) {
	old, err := loadKeyPair(filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key"))
	reason := renewReason(old, err, ca)
	if reason == "" && !want.coveredBy(old.cert) {
		reason = "missing SANs"
	}
	if reason == "" {
		return old, nil
	}
	if old != nil && old.cert.CheckSignatureFrom(ca.cert) == nil {
		want.addCert(old.cert)
	}
	return issueServing(dir, ca, want, lifetime, reason, lg)
}

// issueServing issues and saves a serving certificate for the names in
// want, logging reason.
func issueServing(dir string, ca *keyPair, want sans, lifetime time.Duration, reason string, lg *slog.Logger) (*keyPair, error) {
	dns, ips := want.lists()
	spec := certSpec{
		commonName: "minik-apiserver",
		usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		dnsNames:   dns,
		ips:        ips,
		validity:   lifetime,
	}
	kp, err := newKeyPair(spec, ca, now())
	if err != nil {
		return nil, err
	}
	if err := kp.save(filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key")); err != nil {
		return nil, err
	}
	lg.Info("issued serving certificate", "reason", reason, "dns", dns, "ips", ips, "expires", kp.cert.NotAfter)
	return kp, nil
}

// ensureAdmin returns the admin client certificate, issuing a new one like
// ensureServing does.
func ensureAdmin(dir string, ca *keyPair, lifetime time.Duration, lg *slog.Logger) (*keyPair, error) {
	old, err := loadKeyPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	reason := renewReason(old, err, ca)
	if reason == "" && (old.cert.Subject.CommonName != AdminUser || !slices.Contains(old.cert.Subject.Organization, AdminGroup)) {
		reason = "wrong subject"
	}
	if reason == "" {
		return old, nil
	}
	return issueAdmin(dir, ca, lifetime, reason, lg)
}

// issueAdmin issues and saves an admin client certificate, logging
// reason.
func issueAdmin(dir string, ca *keyPair, lifetime time.Duration, reason string, lg *slog.Logger) (*keyPair, error) {
	spec := certSpec{
		commonName: AdminUser,
		orgs:       []string{AdminGroup},
		usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		validity:   lifetime,
	}
	kp, err := newKeyPair(spec, ca, now())
	if err != nil {
		return nil, err
	}
	if err := kp.save(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")); err != nil {
		return nil, err
	}
	lg.Info("issued admin certificate", "reason", reason, "expires", kp.cert.NotAfter)
	return kp, nil
}

// renewReason says why a leaf loaded with loadErr must be replaced, or ""
// if it can stay. Leaves, unlike the CA, are cheap to replace, so any
// damage is a reason.
func renewReason(kp *keyPair, loadErr error, ca *keyPair) string {
	switch {
	case errors.Is(loadErr, fs.ErrNotExist):
		return "missing"
	case loadErr != nil:
		return "unusable: " + loadErr.Error()
	case kp.cert.CheckSignatureFrom(ca.cert) != nil:
		return "not signed by the cluster CA"
	case !now().Before(api.RenewalTime(kp.cert)):
		return "due for renewal"
	}
	return ""
}

// ServerTLSConfig returns a new TLS configuration for the API server (and
// other listeners agents and clients reach): the serving certificate, TLS
// 1.2 or later, ALPN h2 and http/1.1, and client certificates verified
// against the CA or the front-proxy CA when offered (the authenticator
// tells them apart: see auth.RequestHeader). Requests without one still
// complete the handshake, to be authenticated by bearer token or refused
// later.
//
// The certificate is taken at each handshake from the current
// credentials, so a renewed one serves new connections at once while
// open ones go on.
func (a *Authority) ServerTLSConfig() *tls.Config {
	clientCAs := a.caPool.Clone()
	clientCAs.AddCert(a.frontProxyCA.cert)
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.cur.Load().servingTLS, nil
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  clientCAs,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// SignClientCert issues a client certificate for pub with common name
// commonName (the user name, e.g. "system:node:NAME") and organizations
// orgs (the groups, e.g. "system:nodes"), valid for validity (the
// Options.LeafLifetime if not positive) but never past the CA. It returns
// the certificate PEM.
func (a *Authority) SignClientCert(commonName string, orgs []string, pub crypto.PublicKey, validity time.Duration) ([]byte, error) {
	return a.signClient(commonName, orgs, pub, validity, 0)
}

// RequestBackdate bounds the backdating of the certificates
// SignRequestedClientCert issues, as Kubernetes' CSR signers bound it.
const RequestBackdate = 5 * time.Minute

// SignRequestedClientCert is SignClientCert for a certificate a client
// asked for (a CertificateSigningRequest): backdated by at most
// RequestBackdate, it lasts at most that much longer than asked.
func (a *Authority) SignRequestedClientCert(commonName string, orgs []string, pub crypto.PublicKey, validity time.Duration) ([]byte, error) {
	return a.signClient(commonName, orgs, pub, validity, RequestBackdate)
}

func (a *Authority) signClient(commonName string, orgs []string, pub crypto.PublicKey, validity, maxBackdate time.Duration) ([]byte, error) {
	if commonName == "" {
		return nil, errors.New("client certificate common name must be set")
	}
	if validity <= 0 {
		validity = a.lifetime
	}
	t := now()
	if limit := a.ca.cert.NotAfter.Sub(t); validity > limit {
		validity = limit
	}
	spec := certSpec{
		commonName:  commonName,
		orgs:        slices.Clone(orgs),
		usages:      []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		validity:    validity,
		maxBackdate: maxBackdate,
	}
	_, certPEM, err := issue(spec, pub, a.ca, nil, t)
	return certPEM, err
}

// PublicKeyFromCSR returns the public key of a certificate signing
// request, PEM ("CERTIFICATE REQUEST") or DER, after checking that the
// request is signed by the matching private key. The subject of the
// request is ignored: the signer decides the identity.
func PublicKeyFromCSR(csr []byte) (crypto.PublicKey, error) {
	if block, _ := pem.Decode(csr); block != nil {
		if block.Type != "CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("unexpected PEM block %q in certificate request", block.Type)
		}
		csr = block.Bytes
	}
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return req.PublicKey, nil
}

// CAPEM returns a copy of the CA certificate PEM, the bytes of
// DATA/tls/ca.crt. Serve exactly these bytes to agents: the join token
// pins their hash (CAHash).
func (a *Authority) CAPEM() []byte { return slices.Clone(a.ca.certPEM) }

// CACert returns the parsed CA certificate. Callers must not modify it.
func (a *Authority) CACert() *x509.Certificate { return a.ca.cert }

// ClientCAPool returns a new pool holding the CA, for verifying client
// certificates.
func (a *Authority) ClientCAPool() *x509.CertPool { return a.caPool.Clone() }

// Token returns the full join token "K10<hash>::server:<secret>", the
// content of DATA/token.
func (a *Authority) Token() string { return a.cur.Load().token }

// TokenSecret returns the secret part of the join token.
func (a *Authority) TokenSecret() string { return a.cur.Load().secret }

// AdminToken returns the admin bearer token stored in
// DATA/tls/admin.token.
func (a *Authority) AdminToken() string { return a.adminToken }

// KubeconfigPath returns the path of the admin kubeconfig Ensure wrote.
func (a *Authority) KubeconfigPath() string { return a.kubeconfig }
