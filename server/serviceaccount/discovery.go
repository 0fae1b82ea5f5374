package serviceaccount

import (
	"encoding/json"

	jose "github.com/go-jose/go-jose/v4"
)

// JWKSPath and OpenIDConfigPath are where the API server serves the
// discovery documents.
const (
	JWKSPath         = "/openid/v1/jwks"
	OpenIDConfigPath = "/.well-known/openid-configuration"
)

// JWKS returns the JSON Web Key Set of the keys that verify the Issuer's
// tokens: its public key, with its key id, use "sig" and alg RS256.
func (is *Issuer) JWKS() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &is.key.PublicKey, KeyID: is.keyID, Algorithm: string(jose.RS256), Use: "sig",
	}}}
	return json.Marshal(set)
}

// openIDConfiguration is the subset of OpenID Connect discovery metadata
// Kubernetes serves.
type openIDConfiguration struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	ResponseTypes []string `json:"response_types_supported"`
	SubjectTypes  []string `json:"subject_types_supported"`
	SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
}

// OpenIDConfiguration returns the OpenID Connect discovery document of the
// Issuer, naming jwksURI (empty: the issuer URL + JWKSPath) as where its
// keys are.
func (is *Issuer) OpenIDConfiguration(jwksURI string) ([]byte, error) {
	if jwksURI == "" {
		jwksURI = is.url + JWKSPath
	}
	return json.Marshal(openIDConfiguration{
		Issuer: is.url, JWKSURI: jwksURI,
		ResponseTypes: []string{"id_token"},
		SubjectTypes:  []string{"public"},
		SigningAlgs:   []string{string(jose.RS256)},
	})
}
