package auth_test

import (
	"context"
	"testing"

	"github.com/minik-dev/minik/server/auth"
)

func TestAuthorizeServiceAccount(t *testing.T) {
	sa := auth.ServiceAccountUser("team", "default", "uid-1")
	sa.Groups = append(sa.Groups, auth.GroupAuthenticated)
	// impostor has a service account's name but not its group.
	impostor := auth.User{Name: "system:serviceaccount:team:default", Groups: []string{auth.GroupAuthenticated}}
	tests := []struct {
		name string
		user auth.User
		attr auth.Attributes
		want bool
	}{
		{"get own pod", sa, res("get", "pods", "", "team", "web"), true},
		{"list own pods", sa, res("list", "pods", "", "team", ""), true},
		{"watch own configmaps", sa, res("watch", "configmaps", "", "team", ""), true},
		{"get own pod status", sa, res("get", "pods", "status", "team", "web"), true},
		{"grouped resource in own namespace", sa, auth.Attributes{Verb: "list", APIGroup: "policy", Resource: "poddisruptionbudgets", Namespace: "team"}, true},
		{"get own secret", sa, res("get", "secrets", "", "team", "s"), false},
		{"list own secrets", sa, res("list", "secrets", "", "team", ""), false},
		{"pod log", sa, res("get", "pods", "log", "team", "web"), false},
		{"exec", sa, res("create", "pods", "exec", "team", "web"), false},
		{"create pod", sa, res("create", "pods", "", "team", ""), false},
		{"delete pod", sa, res("delete", "pods", "", "team", "web"), false},
		{"token for itself", sa, res("create", "serviceaccounts", "token", "team", "default"), false},
		{"other namespace", sa, res("get", "pods", "", "other", "web"), false},
		{"all namespaces", sa, res("list", "pods", "", "", ""), false},
		{"nodes", sa, res("list", "nodes", "", "", ""), false},
		{"own namespace object", sa, res("get", "namespaces", "", "", "team"), false},
		{"discovery", sa, path("get", "/apis"), true},
		{"oidc configuration", sa, path("get", "/.well-known/openid-configuration"), true},
		{"jwks", sa, path("get", "/openid/v1/jwks"), true},
		{"anonymous jwks", anonymous, path("get", "/openid/v1/jwks"), false},
		{"impostor", impostor, res("get", "pods", "", "team", "web"), false},
	}
	var z auth.Authorizer
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := z.Authorize(context.Background(), tc.user, tc.attr)
			if got != tc.want {
				t.Errorf("Authorize(%q, %+v) = %v (%s), want %v", tc.user.Name, tc.attr, got, reason, tc.want)
			}
		})
	}
}

func TestServiceAccountName(t *testing.T) {
	tests := []struct {
		name   string
		user   auth.User
		ns, sa string
		wantOK bool
	}{
		{"service account", auth.ServiceAccountUser("a", "b", ""), "a", "b", true},
		{"no group", auth.User{Name: "system:serviceaccount:a:b"}, "", "", false},
		{"no name", auth.User{Name: "system:serviceaccount:a:", Groups: []string{auth.GroupServiceAccounts}}, "", "", false},
		{"no namespace", auth.User{Name: "system:serviceaccount::b", Groups: []string{auth.GroupServiceAccounts}}, "", "", false},
		{"extra colon", auth.User{Name: "system:serviceaccount:a:b:c", Groups: []string{auth.GroupServiceAccounts}}, "", "", false},
		{"node", node1, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, sa, ok := auth.ServiceAccount(tc.user)
			if ns != tc.ns || sa != tc.sa || ok != tc.wantOK {
				t.Errorf("ServiceAccount(%q) = %q, %q, %v; want %q, %q, %v", tc.user.Name, ns, sa, ok, tc.ns, tc.sa, tc.wantOK)
			}
		})
	}
}
