package nodes_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/server/pki"
)

// A node renews its certificate by registering with it, without the join
// token, which may have been rotated since the node joined; a node's
// certificate does not stand in for the token when registering another
// name.
func TestRegisterRenewsWithoutToken(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.Ensure(dir, pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{ca: ca})
	anon := e.dial(nil)
	oldToken := ca.Token()
	cert, err := registerAs(t, anon, oldToken, "n1", "pw")
	if err != nil {
		t.Fatalf("joining with the token: %v", err)
	}
	if _, err := pki.RotateToken(dir); err != nil {
		t.Fatal(err)
	}
	if changed, err := ca.Refresh(); err != nil || !changed {
		t.Fatalf("Refresh after RotateToken = %v, %v; want true, nil", changed, err)
	}
	tests := []struct {
		name     string
		cert     bool
		node     string
		token    string
		wantCode codes.Code
	}{
		{"node renews with the rotated-away token", true, "n1", oldToken, codes.OK},
		{"node renews with no token", true, "n1", "", codes.OK},
		{"old token without a certificate", false, "n3", oldToken, codes.Unauthenticated},
		{"new token without a certificate", false, "n3", ca.Token(), codes.OK},
		{"node's certificate for another name", true, "n2", "", codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := anon
			if tc.cert {
				c = e.dial(cert)
			}
			got, err := registerAs(t, c, tc.token, tc.node, "pw")
			if code := status.Code(err); code != tc.wantCode {
				t.Fatalf("Register(%s) = %v, want %v", tc.node, err, tc.wantCode)
			}
			if err == nil && got.Leaf.Subject.CommonName != "system:node:"+tc.node {
				t.Errorf("certificate for %q, want system:node:%s", got.Leaf.Subject.CommonName, tc.node)
			}
		})
	}
}
