package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/minik-dev/minik/internal/atomicfile"
)

// clockSkew backdates NotBefore so that a peer whose clock runs a little
// behind still accepts a certificate issued moments ago. A short-lived
// certificate is backdated by a quarter of its lifetime at most, so that
// api.RenewalTime stays ahead of its expiry.
const clockSkew = time.Hour

// keyPair is a parsed certificate with its private key and PEM encodings.
type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// certSpec describes a certificate to issue.
type certSpec struct {
	commonName string
	orgs       []string
	isCA       bool
	usages     []x509.ExtKeyUsage
	dnsNames   []string
	ips        []net.IP
	validity   time.Duration
	// maxBackdate, when positive, bounds how far NotBefore is backdated
	// (clockSkew, or a quarter of validity, otherwise).
	maxBackdate time.Duration
}

// backdate is how far before now the certificate of spec starts.
func (spec certSpec) backdate() time.Duration {
	d := min(clockSkew, spec.validity/4)
	if spec.maxBackdate > 0 {
		d = min(d, spec.maxBackdate)
	}
	return d
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// template builds the certificate template for spec, valid from now.
func (spec certSpec) template(now time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: spec.commonName, Organization: spec.orgs},
		NotBefore:             now.Add(-spec.backdate()).UTC(),
		NotAfter:              now.Add(spec.validity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           spec.usages,
		BasicConstraintsValid: true,
		DNSNames:              spec.dnsNames,
		IPAddresses:           spec.ips,
	}
	if spec.isCA {
		t.IsCA = true
		t.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	return t, nil
}

// issue creates a certificate for spec and pub, signed by parent (or
// self-signed when parent is nil, in which case key must be the private key
// of pub).
func issue(spec certSpec, pub crypto.PublicKey, parent *keyPair, key *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, []byte, error) {
	tmpl, err := spec.template(now)
	if err != nil {
		return nil, nil, err
	}
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate %q: %w", spec.commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// newKeyPair generates a key and a certificate for spec signed by parent,
// or a self-signed one when parent is nil.
func newKeyPair(spec certSpec, parent *keyPair, now time.Time) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	cert, certPEM, err := issue(spec, key.Public(), parent, key, now)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return &keyPair{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// parseKeyPair parses a PEM certificate and its PEM ECDSA private key and
// checks that they belong together.
func parseKeyPair(certPEM, keyPEM []byte) (*keyPair, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block in key")
	}
	var key *ecdsa.PrivateKey
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			var ok bool
			if key, ok = k.(*ecdsa.PrivateKey); !ok {
				err = fmt.Errorf("key type %T is not ECDSA", k)
			}
		}
	default:
		err = fmt.Errorf("unexpected PEM block %q in key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("certificate and key do not match")
	}
	return &keyPair{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// parseCertPEM parses the first CERTIFICATE block of data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// loadKeyPair reads certFile and keyFile. It returns fs.ErrNotExist (wrapped)
// only when both files are missing; one without the other is an error of
// its own, since silently replacing half a pair could orphan the other.
func loadKeyPair(certFile, keyFile string) (*keyPair, error) {
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		return nil, certErr
	case certMissing != keyMissing:
		return nil, fmt.Errorf("only one of %s and %s exists", certFile, keyFile)
	case certErr != nil:
		return nil, certErr
	case keyErr != nil:
		return nil, keyErr
	}
	kp, err := parseKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	return kp, nil
}

// save writes the pair to certFile (0644) and keyFile (0600).
func (kp *keyPair) save(certFile, keyFile string) error {
	if err := atomicfile.Write(keyFile, kp.keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certFile, kp.certPEM, 0o644)
}
