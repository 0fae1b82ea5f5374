package serviceaccount

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	keyOnce  sync.Once
	keys     [2]*rsa.PrivateKey
	testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// testKeys returns two RSA keys, made once for the package's tests.
func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		for i := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		}
	})
	return keys[0], keys[1]
}

func testIssuer(t testing.TB) *Issuer {
	t.Helper()
	k, _ := testKeys(t)
	is, err := NewIssuer(k, "")
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func podClaims(now time.Time) Claims {
	return Claims{
		ID: "f8a7d2e0-1", Audiences: []string{DefaultIssuer}, IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour),
		Namespace: "ns1", ServiceAccount: Ref{Name: "default", UID: "sa-uid"},
		Pod: &Ref{Name: "web", UID: "pod-uid"}, Node: &Ref{Name: "n1", UID: "node-uid"},
	}
}

// The token carries the claims Kubernetes puts in one, under the same names.
func TestIssueClaims(t *testing.T) {
	is := testIssuer(t)
	tok, err := is.Issue(podClaims(testTime))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	var header map[string]any
	decodeSegment(t, parts[0], &header)
	if header["alg"] != "RS256" || header["kid"] != is.keyID || header["kid"] == "" {
		t.Errorf("header = %v, want alg RS256 and kid %q", header, is.keyID)
	}
	var payload map[string]any
	decodeSegment(t, parts[1], &payload)
	want := map[string]any{
		"iss": DefaultIssuer, "sub": "system:serviceaccount:ns1:default", "aud": DefaultIssuer, // one audience: a string (RFC 7519 4.1.3)
		"iat": float64(testTime.Unix()), "nbf": float64(testTime.Unix()), "exp": float64(testTime.Add(time.Hour).Unix()),
		"jti": "f8a7d2e0-1",
		"kubernetes.io": map[string]any{
			"namespace":      "ns1",
			"serviceaccount": map[string]any{"name": "default", "uid": "sa-uid"},
			"pod":            map[string]any{"name": "web", "uid": "pod-uid"},
			"node":           map[string]any{"name": "n1", "uid": "node-uid"},
		},
	}
	if diff := cmp.Diff(want, payload); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	got, err := is.Parse(tok, testTime.Add(time.Minute))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if diff := cmp.Diff(podClaims(testTime), got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func TestParseRefuses(t *testing.T) {
	is := testIssuer(t)
	_, otherKey := testKeys(t)
	other, err := NewIssuer(otherKey, "")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := NewIssuer(keys[0], "https://elsewhere.example")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := is.Issue(podClaims(testTime))
	forged, _ := other.Issue(podClaims(testTime))
	foreign, _ := elsewhere.Issue(podClaims(testTime))
	noSA := podClaims(testTime)
	noSA.ServiceAccount.UID = ""
	noSATok, _ := is.Issue(noSA)
	parts := strings.Split(good, ".")
	var payload map[string]any
	decodeSegment(t, parts[1], &payload)
	payload["sub"] = "system:serviceaccount:kube-system:admin"
	evil, _ := json.Marshal(payload)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(evil) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"forged signature", forged, testTime, ErrSignature},
		{"tampered payload", tampered, testTime, ErrSignature},
		{"alg none", none, testTime, ErrMalformed},
		{"not a JWT", "abc", testTime, ErrMalformed},
		{"other issuer", foreign, testTime, ErrIssuer},
		{"expired", good, testTime.Add(time.Hour + Leeway + time.Second), ErrExpired},
		{"not yet valid", good, testTime.Add(-Leeway - time.Second), ErrExpired},
		{"no service account uid", noSATok, testTime, ErrClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := is.Parse(tc.token, tc.at); !errors.Is(err, tc.want) {
				t.Errorf("Parse = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := is.Parse(good, testTime.Add(time.Hour+Leeway-time.Second)); err != nil {
		t.Errorf("Parse within the leeway after expiry = %v, want nil", err)
	}
}

// A token verifies with the key the JWKS publishes, checked with
// crypto/rsa alone, not the code that signed it.
func TestJWKSVerifiesToken(t *testing.T) {
	is := testIssuer(t)
	tok, err := is.Issue(podClaims(testTime))
	if err != nil {
		t.Fatal(err)
	}
	data, err := is.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct{ Kty, Kid, Alg, Use, N, E string }
	}
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Kty != "RSA" || set.Keys[0].Alg != "RS256" || set.Keys[0].Use != "sig" {
		t.Fatalf("JWKS = %s, want one RSA RS256 signing key", data)
	}
	pub := rsaKey(t, set.Keys[0].N, set.Keys[0].E)
	parts := strings.Split(tok, ".")
	var header struct{ Kid string }
	decodeSegment(t, parts[0], &header)
	if header.Kid != set.Keys[0].Kid {
		t.Errorf("token kid %q, JWKS kid %q", header.Kid, set.Keys[0].Kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("token does not verify with the JWKS key: %v", err)
	}
	sum[0] ^= 1
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err == nil {
		t.Errorf("the JWKS key verifies a signature over other bytes")
	}
}

func rsaKey(t *testing.T, n, e string) *rsa.PublicKey {
	t.Helper()
	nb, err1 := base64.RawURLEncoding.DecodeString(n)
	eb, err2 := base64.RawURLEncoding.DecodeString(e)
	if err1 != nil || err2 != nil {
		t.Fatalf("JWKS n/e: %v %v", err1, err2)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
}

func TestOpenIDConfiguration(t *testing.T) {
	is := testIssuer(t)
	data, err := is.OpenIDConfiguration("")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer": DefaultIssuer, "jwks_uri": DefaultIssuer + JWKSPath,
		"response_types_supported": []any{"id_token"}, "subject_types_supported": []any{"public"},
		"id_token_signing_alg_values_supported": []any{"RS256"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OpenIDConfiguration (-want +got):\n%s", diff)
	}
}

// An extended token says when it would have expired, in the
// kubernetes.io warnafter claim, as a NumericDate.
func TestIssueWarnAfter(t *testing.T) {
	is := testIssuer(t)
	c := podClaims(testTime)
	c.WarnAfter, c.Expiry = testTime.Add(WarnOnlyExpirationSeconds*time.Second), testTime.Add(ExtendedExpiration)
	tok, err := is.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Kubernetes struct {
			WarnAfter float64 `json:"warnafter"`
		} `json:"kubernetes.io"`
	}
	decodeSegment(t, strings.Split(tok, ".")[1], &payload)
	if want := float64(c.WarnAfter.Unix()); payload.Kubernetes.WarnAfter != want {
		t.Errorf("warnafter = %v, want %v", payload.Kubernetes.WarnAfter, want)
	}
	got, err := is.Parse(tok, testTime.Add(2*time.Hour))
	if err != nil {
		t.Fatalf("Parse past warnafter = %v", err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}
