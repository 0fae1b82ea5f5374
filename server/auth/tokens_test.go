package auth_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/minik-dev/minik/server/auth"
)

// jwtStub accepts one token, meant for audiences "api" and "vault".
type jwtStub struct{}

func (jwtStub) AuthenticateToken(_ context.Context, token string, audiences []string) (auth.User, []string, bool) {
	meant := []string{"api", "vault"}
	if len(audiences) == 0 {
		audiences = []string{"api"}
	}
	var accepted []string
	for _, a := range audiences {
		if slices.Contains(meant, a) {
			accepted = append(accepted, a)
		}
	}
	if token != "jwt" || len(accepted) == 0 {
		return auth.User{}, nil, false
	}
	return auth.ServiceAccountUser("ns", "sa", "uid"), accepted, true
}

func TestTokenAuthenticator(t *testing.T) {
	base := auth.NewAuthenticator(nil, map[string]auth.User{"admin-token": auth.AdminUser})
	authn := base.WithTokenAuthenticator(jwtStub{}, []string{"api"})
	tests := []struct {
		name   string
		header string
		want   string
	}{
		{"service account token", "Bearer jwt", "system:serviceaccount:ns:sa"},
		{"fixed token still accepted", "Bearer admin-token", "system:admin"},
		{"unknown token", "Bearer nope", ""},
		{"basic scheme", "Basic jwt", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", tc.header)
			u, ok := authn.Authenticate(r)
			if u.Name != tc.want || ok != (tc.want != "") {
				t.Errorf("Authenticate(%q) = %q, %v; want %q", tc.header, u.Name, ok, tc.want)
			}
			if ok && !u.InGroup(auth.GroupAuthenticated) {
				t.Errorf("groups %v lack %s", u.Groups, auth.GroupAuthenticated)
			}
		})
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer jwt")
	if _, ok := base.Authenticate(r); ok {
		t.Errorf("the authenticator WithTokenAuthenticator copied from accepts the service account token")
	}
}

func TestReviewToken(t *testing.T) {
	authn := auth.NewAuthenticator(nil, map[string]auth.User{"admin-token": auth.AdminUser}).
		WithTokenAuthenticator(jwtStub{}, []string{"api"})
	tests := []struct {
		name      string
		token     string
		audiences []string
		wantUser  string
		wantAuds  []string
	}{
		{"jwt, default audience", "jwt", nil, "system:serviceaccount:ns:sa", []string{"api"}},
		{"jwt, asked audience", "jwt", []string{"vault", "other"}, "system:serviceaccount:ns:sa", []string{"vault"}},
		{"jwt, foreign audience", "jwt", []string{"other"}, "", nil},
		{"fixed token, default audience", "admin-token", nil, "system:admin", []string{"api"}},
		{"fixed token, api audience", "admin-token", []string{"x", "api"}, "system:admin", []string{"api"}},
		{"fixed token, foreign audience", "admin-token", []string{"vault"}, "", nil},
		{"empty", "", nil, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, auds, ok := authn.ReviewToken(context.Background(), tc.token, tc.audiences)
			if u.Name != tc.wantUser || ok != (tc.wantUser != "") || !slices.Equal(auds, tc.wantAuds) {
				t.Errorf("ReviewToken = %q, %v, %v; want %q, %v", u.Name, auds, ok, tc.wantUser, tc.wantAuds)
			}
		})
	}
}
