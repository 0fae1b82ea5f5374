package runtime

import "testing"

func TestCredentialsFor(t *testing.T) {
	creds := credentialsFor([]RegistryAuth{
		{Host: "registry.example:5000", Username: "u1", Password: "p1"},
		{Host: "index.docker.io", Username: "hub", Password: "hp"},
		{Host: "registry.example:5000", Username: "second", Password: "ignored"},
	})
	tests := []struct{ host, user, pass string }{
		{"registry.example:5000", "u1", "p1"},
		{"registry-1.docker.io", "hub", "hp"},
		{"docker.io", "hub", "hp"},
		{"registry.example", "", ""},
		{"other.example", "", ""},
	}
	for _, tc := range tests {
		u, p, err := creds(tc.host)
		if err != nil || u != tc.user || p != tc.pass {
			t.Errorf("creds(%q) = %q, %q, %v; want %q, %q", tc.host, u, p, err, tc.user, tc.pass)
		}
	}
}
