package auth_test

import (
	"net/http/httptest"
	"testing"

	"github.com/minik-dev/minik/server/auth"
)

func TestSetTokensReplacesTable(t *testing.T) {
	base := auth.NewAuthenticator(nil, map[string]auth.User{"old": auth.BootstrapUser})
	authn := base.WithTokenAuthenticator(nil, nil)
	authn.SetTokens(map[string]auth.User{"new": auth.BootstrapUser})
	tests := []struct {
		name  string
		a     *auth.Authenticator
		token string
		want  bool
	}{
		{"replaced table refuses the old token", authn, "old", false},
		{"replaced table accepts the new token", authn, "new", true},
		{"the original keeps its table", base, "old", true},
		{"the original does not see the new token", base, "new", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			if _, got := tc.a.Authenticate(r); got != tc.want {
				t.Errorf("Authenticate(Bearer %s) = %v, want %v", tc.token, got, tc.want)
			}
		})
	}
}
