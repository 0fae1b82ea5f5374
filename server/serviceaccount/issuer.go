package serviceaccount

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of Kubernetes.
const (
	// DefaultIssuer is the issuer (iss) and default audience of tokens.
	DefaultIssuer = "https://kubernetes.default.svc.cluster.local"
	// DefaultExpiration is the lifetime of a token whose request names none.
	DefaultExpiration = time.Hour
	// MinExpiration is the shortest lifetime a token may be requested for.
	MinExpiration = 10 * time.Minute
	// MaxExpirationSeconds is the longest lifetime a token may be
	// requested for, 2^32 seconds.
	MaxExpirationSeconds = 1 << 32
	// Leeway is how far past its expiry (or before its nbf) a token is
	// still accepted, for clocks that disagree.
	Leeway = jwt.DefaultLeeway
	// WarnOnlyExpirationSeconds is the lifetime ServiceAccount admission
	// asks for the tokens of its volumes, an hour and seven seconds. A
	// node's token of that lifetime for the API's audience is issued for
	// ExtendedExpiration instead, with WarnAfter at the hour and seven
	// seconds, so that a client that does not reload its token keeps
	// working while the node renews it as if it expired.
	WarnOnlyExpirationSeconds = 3607
	// ExtendedExpiration is the lifetime of such a token: a year.
	ExtendedExpiration = 365 * 24 * time.Hour
)

// Errors Parse returns.
var (
	// ErrMalformed: not a JWT signed with RS256.
	ErrMalformed = errors.New("serviceaccount: malformed token")
	// ErrSignature: the signature is not this Issuer's key's.
	ErrSignature = errors.New("serviceaccount: invalid signature")
	// ErrIssuer: the token names another issuer.
	ErrIssuer = errors.New("serviceaccount: token from another issuer")
	// ErrExpired: the token has expired, or is not valid yet.
	ErrExpired = errors.New("serviceaccount: token expired or not yet valid")
	// ErrClaims: the token lacks a claim service account tokens carry.
	ErrClaims = errors.New("serviceaccount: token lacks service account claims")
)

// Ref names an object a token refers to.
type Ref struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// Claims are what a service account token says.
type Claims struct {
	// ID is the token's unique id (jti).
	ID        string
	Audiences []string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	Namespace string
	// ServiceAccount is the account the token authenticates as.
	ServiceAccount Ref
	// Pod or Secret, if set, is the object the token is bound to: the
	// token is valid only while that object exists. Node is the node a
	// bound pod runs on.
	Pod, Secret, Node *Ref
	// WarnAfter, if set, is when a token whose expiry was extended
	// (see ExtendedExpiration) would have expired (the kubernetes.io
	// warnafter claim).
	WarnAfter time.Time
}

// Subject is the token's subject and user name,
// "system:serviceaccount:NAMESPACE:NAME".
func (c Claims) Subject() string {
	return "system:serviceaccount:" + c.Namespace + ":" + c.ServiceAccount.Name
}

// privateClaims is the "kubernetes.io" claim as Kubernetes encodes it.
type privateClaims struct {
	Kubernetes kubernetesClaim `json:"kubernetes.io"`
}

type kubernetesClaim struct {
	Namespace      string `json:"namespace,omitempty"`
	ServiceAccount *Ref   `json:"serviceaccount,omitempty"`
	Pod            *Ref   `json:"pod,omitempty"`
	Secret         *Ref   `json:"secret,omitempty"`
	Node           *Ref   `json:"node,omitempty"`
	// WarnAfter is a NumericDate, as Kubernetes encodes it.
	WarnAfter *jwt.NumericDate `json:"warnafter,omitempty"`
}

// Issuer signs and parses the tokens of one cluster. It is immutable and
// safe for concurrent use.
type Issuer struct {
	url    string
	key    *rsa.PrivateKey
	keyID  string
	signer jose.Signer
}

// NewIssuer returns an Issuer that signs with key and names itself url
// (DefaultIssuer if empty) in the tokens' iss claim.
func NewIssuer(key *rsa.PrivateKey, url string) (*Issuer, error) {
	if url == "" {
		url = DefaultIssuer
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	if err != nil {
		return nil, err
	}
	return &Issuer{url: url, key: key, keyID: kid, signer: signer}, nil
}

// keyID is the key's id in token headers and the JWKS: the unpadded
// base64url SHA-256 of its PKIX encoding, as Kubernetes computes it.
func keyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// URL returns the issuer URL, the iss claim of the tokens.
func (is *Issuer) URL() string { return is.url }

// Issue returns a signed token saying c.
func (is *Issuer) Issue(c Claims) (string, error) {
	std := jwt.Claims{
		Issuer:    is.url,
		Subject:   c.Subject(),
		Audience:  jwt.Audience(c.Audiences),
		Expiry:    jwt.NewNumericDate(c.Expiry),
		NotBefore: jwt.NewNumericDate(c.NotBefore),
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		ID:        c.ID,
	}
	priv := privateClaims{Kubernetes: kubernetesClaim{
		Namespace: c.Namespace, ServiceAccount: &c.ServiceAccount, Pod: c.Pod, Secret: c.Secret, Node: c.Node,
	}}
	if !c.WarnAfter.IsZero() {
		priv.Kubernetes.WarnAfter = jwt.NewNumericDate(c.WarnAfter)
	}
	return jwt.Signed(is.signer).Claims(std).Claims(priv).Serialize()
}

// Parse checks token's signature, issuer and times against now and
// returns its claims. It does not check the audience, nor whether the
// objects the token names exist (see Authenticator).
func (is *Issuer) Parse(token string, now time.Time) (Claims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var std jwt.Claims
	var priv privateClaims
	if err := tok.Claims(&is.key.PublicKey, &std, &priv); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if std.Issuer != is.url {
		return Claims{}, fmt.Errorf("issuer %q: %w", std.Issuer, ErrIssuer)
	}
	if std.Expiry == nil {
		return Claims{}, fmt.Errorf("no exp: %w", ErrClaims)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Time: now}, Leeway); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrExpired, err)
	}
	k := priv.Kubernetes
	if k.Namespace == "" || k.ServiceAccount == nil || k.ServiceAccount.Name == "" || k.ServiceAccount.UID == "" {
		return Claims{}, ErrClaims
	}
	c := Claims{
		ID: std.ID, Audiences: std.Audience, Expiry: std.Expiry.Time(),
		Namespace: k.Namespace, ServiceAccount: *k.ServiceAccount, Pod: k.Pod, Secret: k.Secret, Node: k.Node,
	}
	if std.IssuedAt != nil {
		c.IssuedAt = std.IssuedAt.Time()
	}
	if k.WarnAfter != nil {
		c.WarnAfter = k.WarnAfter.Time()
	}
	if std.NotBefore != nil {
		c.NotBefore = std.NotBefore.Time()
	}
	if c.Subject() != std.Subject {
		return Claims{}, fmt.Errorf("subject %q does not match the kubernetes.io claim: %w", std.Subject, ErrClaims)
	}
	return c, nil
}
