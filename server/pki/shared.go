package pki

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/minik-dev/minik/api"
)

// Errors of opening sealed data; test with errors.Is.
var (
	// ErrWrongToken is returned by Unseal when the token secret does not
	// decrypt the sealed data.
	ErrWrongToken = errors.New("pki: the token does not decrypt the cluster's bootstrap data")
	// ErrWrongCA is returned by UnsealForServer when the CA key does not
	// decrypt the sealed data.
	ErrWrongCA = errors.New("pki: the CA key does not decrypt the cluster's bootstrap data")
	// ErrNotSealedForServers: the sealed data was made before it was also
	// sealed for the cluster's servers.
	ErrNotSealedForServers = errors.New("pki: the bootstrap data is sealed for token holders only")
)

// Shared is what every server of one cluster holds alike: the CA with its
// key, the join token's secret, the admin bearer token, the service
// account signing key and the front-proxy CA with its key. Each server issues its own serving and admin
// certificates from the CA.
type Shared struct {
	CACert      []byte `json:"caCert"` // PEM
	CAKey       []byte `json:"caKey"`  // PEM
	TokenSecret string `json:"tokenSecret"`
	AdminToken  string `json:"adminToken"`
	// ServiceAccountKey (PEM) is empty in data sealed before servers
	// shared it; each server then keeps its own.
	ServiceAccountKey []byte `json:"serviceAccountKey,omitempty"`
	// FrontProxyCACert and FrontProxyCAKey (PEM) are empty in data
	// sealed before servers shared them; each server then keeps its own.
	FrontProxyCACert []byte `json:"frontProxyCACert,omitempty"`
	FrontProxyCAKey  []byte `json:"frontProxyCAKey,omitempty"`
}

// Shared returns the credentials other servers of the cluster need.
func (a *Authority) Shared() Shared {
	return Shared{
		CACert: slices.Clone(a.ca.certPEM), CAKey: slices.Clone(a.ca.keyPEM),
		TokenSecret: a.TokenSecret(), AdminToken: a.adminToken,
		ServiceAccountKey: slices.Clone(a.saKeyPEM),
		FrontProxyCACert:  slices.Clone(a.frontProxyCA.certPEM), FrontProxyCAKey: slices.Clone(a.frontProxyCA.keyPEM),
	}
}

// CAHash is the hash of sh.CACert, the pin of the cluster's join token.
func (sh Shared) CAHash() string { return api.CAHash(sh.CACert) }

// Install writes sh under dataDir (tls/ca.crt, tls/ca.key,
// tls/admin.token, tls/service-account.key and tls/front-proxy-ca.* when
// sh has them, and the token file), replacing what is there, so that a following Ensure uses the
// cluster's CA and secrets and reissues the serving and admin
// certificates from it.
func Install(dataDir string, sh Shared) error {
	if _, err := parseKeyPair(sh.CACert, sh.CAKey); err != nil {
		return fmt.Errorf("shared CA: %w", err)
	}
	for _, s := range []string{sh.TokenSecret, sh.AdminToken} {
		if s == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			return fmt.Errorf("shared secrets: %w", api.ErrInvalidToken)
		}
	}
	if len(sh.ServiceAccountKey) > 0 {
		if _, err := parseServiceAccountKey(sh.ServiceAccountKey); err != nil {
			return fmt.Errorf("shared secrets: %w", err)
		}
	}
	hasFrontProxy := len(sh.FrontProxyCACert) > 0 || len(sh.FrontProxyCAKey) > 0
	if hasFrontProxy {
		if _, err := parseKeyPair(sh.FrontProxyCACert, sh.FrontProxyCAKey); err != nil {
			return fmt.Errorf("shared front-proxy CA: %w", err)
		}
	}
	tlsDir := filepath.Join(dataDir, TLSDir)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return err
	}
	files := []installedFile{
		{filepath.Join(tlsDir, "ca.crt"), sh.CACert, 0o644},
		{filepath.Join(tlsDir, "ca.key"), sh.CAKey, 0o600},
		{filepath.Join(tlsDir, AdminTokenFile), []byte(sh.AdminToken + "\n"), 0o600},
		{filepath.Join(dataDir, TokenFile), []byte(api.FormatToken(sh.CAHash(), sh.TokenSecret) + "\n"), 0o600},
	}
	if len(sh.ServiceAccountKey) > 0 {
		files = append(files, installedFile{filepath.Join(tlsDir, ServiceAccountKeyFile), sh.ServiceAccountKey, 0o600})
	}
	if hasFrontProxy {
		files = append(files,
			installedFile{filepath.Join(tlsDir, frontProxyCAFile+".crt"), sh.FrontProxyCACert, 0o644},
			installedFile{filepath.Join(tlsDir, frontProxyCAFile+".key"), sh.FrontProxyCAKey, 0o600})
	}
	for _, f := range files {
		if err := writeIfChanged(f.name, f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

// installedFile is a file Install writes.
type installedFile struct {
	name string
	data []byte
	perm os.FileMode
}

// Key derivation for Seal: PBKDF2-HMAC-SHA256 (OWASP's 2023 count),
// into an AES-256-GCM key.
const (
	sealKDF        = "pbkdf2-sha256"
	sealIterations = 600000
	sealSaltBytes  = 16
	// maxSealIterations bounds the count Unseal accepts from the stored
	// data: a record asking for billions would hold every server's start
	// for hours.
	maxSealIterations = 10 * sealIterations
)

// serverKeyInfo is the HKDF info of the key that seals Shared for the
// cluster's servers.
const serverKeyInfo = "minik bootstrap data for servers"

// sealed is the stored form of Shared: encrypted with a key derived from
// the token secret, the CA hash in clear (it is public, and lets a server
// with a token for another cluster say so). The same plaintext is
// encrypted a second time for the servers, with a key derived from the
// CA's private key (HKDF-SHA256), so that a server that has been in the
// cluster opens it after the token was rotated; data sealed by earlier
// versions lacks that part.
type sealed struct {
	KDF        string `json:"kdf"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
	CAHash     string `json:"caHash"`
	Ciphertext []byte `json:"ciphertext"`

	ServerNonce      []byte `json:"serverNonce,omitempty"`
	ServerCiphertext []byte `json:"serverCiphertext,omitempty"`
}

// Seal encrypts sh with a key derived from sh.TokenSecret, so that only
// holders of the join token can read it, and again with a key derived
// from sh.CAKey, for the servers that hold the CA (UnsealForServer). The
// CA hash is bound to both ciphertexts as additional data.
func Seal(sh Shared) ([]byte, error) {
	plain, err := json.Marshal(sh)
	if err != nil {
		return nil, err
	}
	s := sealed{KDF: sealKDF, Iterations: sealIterations, Salt: make([]byte, sealSaltBytes), CAHash: sh.CAHash()}
	rand.Read(s.Salt) // never fails (crypto/rand)
	aead, err := sealAEAD(sh.TokenSecret, s)
	if err != nil {
		return nil, err
	}
	s.Nonce = make([]byte, aead.NonceSize())
	rand.Read(s.Nonce)
	s.Ciphertext = aead.Seal(nil, s.Nonce, plain, []byte(s.CAHash))
	serverAEAD, err := serverSealAEAD(sh.CACert, sh.CAKey)
	if err != nil {
		return nil, err
	}
	s.ServerNonce = make([]byte, serverAEAD.NonceSize())
	rand.Read(s.ServerNonce)
	s.ServerCiphertext = serverAEAD.Seal(nil, s.ServerNonce, plain, []byte(s.CAHash))
	return json.Marshal(s)
}

// UnsealForServer decrypts data made by Seal with the cluster CA's
// certificate and key (PEM), as a server of the cluster holds them. A CA
// that does not decrypt it is ErrWrongCA; data sealed without the
// servers' part is ErrNotSealedForServers.
func UnsealForServer(data, caCert, caKey []byte) (Shared, error) {
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil {
		return Shared{}, fmt.Errorf("sealed bootstrap data: %w", err)
	}
	if len(s.ServerCiphertext) == 0 {
		return Shared{}, ErrNotSealedForServers
	}
	if api.CAHash(caCert) != s.CAHash {
		return Shared{}, ErrWrongCA
	}
	aead, err := serverSealAEAD(caCert, caKey)
	if err != nil {
		return Shared{}, err
	}
	if len(s.ServerNonce) != aead.NonceSize() {
		return Shared{}, fmt.Errorf("sealed bootstrap data: server nonce of %d bytes", len(s.ServerNonce))
	}
	plain, err := aead.Open(nil, s.ServerNonce, s.ServerCiphertext, []byte(s.CAHash))
	if err != nil {
		return Shared{}, ErrWrongCA
	}
	return decodeShared(plain, s.CAHash)
}

// SealedForServers reports whether data made by Seal has the part that
// UnsealForServer opens.
func SealedForServers(data []byte) bool {
	var s sealed
	return json.Unmarshal(data, &s) == nil && len(s.ServerCiphertext) > 0
}

// serverSealAEAD is the cipher of the servers' part of sealed data: AES-256-GCM
// under HKDF-SHA256 of the CA's private key.
func serverSealAEAD(caCert, caKey []byte) (cipher.AEAD, error) {
	ca, err := parseKeyPair(caCert, caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, err
	}
	key, err := hkdf.Key(sha256.New, der, nil, serverKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealedCAHash returns the CA hash data sealed by Seal was made for,
// without decrypting it.
func SealedCAHash(data []byte) (string, error) {
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil {
		return "", fmt.Errorf("sealed bootstrap data: %w", err)
	}
	return s.CAHash, nil
}

// Unseal decrypts data made by Seal with the token secret. A secret that
// does not decrypt it is ErrWrongToken.
func Unseal(data []byte, secret string) (Shared, error) {
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil {
		return Shared{}, fmt.Errorf("sealed bootstrap data: %w", err)
	}
	if s.KDF != sealKDF || s.Iterations <= 0 || s.Iterations > maxSealIterations {
		return Shared{}, fmt.Errorf("sealed bootstrap data: unknown key derivation %q (%d iterations)", s.KDF, s.Iterations)
	}
	aead, err := sealAEAD(secret, s)
	if err != nil {
		return Shared{}, err
	}
	if len(s.Nonce) != aead.NonceSize() {
		return Shared{}, fmt.Errorf("sealed bootstrap data: nonce of %d bytes", len(s.Nonce))
	}
	plain, err := aead.Open(nil, s.Nonce, s.Ciphertext, []byte(s.CAHash))
	if err != nil {
		return Shared{}, ErrWrongToken
	}
	return decodeShared(plain, s.CAHash)
}

// decodeShared decodes decrypted Shared, whose CA must have caHash.
func decodeShared(plain []byte, caHash string) (Shared, error) {
	var sh Shared
	if err := json.Unmarshal(plain, &sh); err != nil {
		return Shared{}, fmt.Errorf("sealed bootstrap data: %w", err)
	}
	if sh.CAHash() != caHash {
		return Shared{}, fmt.Errorf("sealed bootstrap data: CA does not match its hash: %w", api.ErrCAMismatch)
	}
	return sh, nil
}

func sealAEAD(secret string, s sealed) (cipher.AEAD, error) {
	if secret == "" {
		return nil, fmt.Errorf("empty token secret: %w", api.ErrInvalidToken)
	}
	key, err := pbkdf2.Key(sha256.New, secret, s.Salt, s.Iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
