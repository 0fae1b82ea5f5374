//go:build integration

package test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/store/storetest"
)

// registerWith registers node through s with token over the node
// protocol, as a joining agent does.
func registerWith(t *testing.T, s *serverProc, token, node string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	roots, err := nodeclient.TrustCA(ctx, s.url(), token, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("trusting the CA of %s: %v", s.url(), err)
	}
	conn, err := nodeclient.Dial(s.url(), roots, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = nodeclient.Register(ctx, conn, token, node, "password-of-"+node)
	return err
}

// TestIntegrationTokenRotationServers rotates the join token on one of
// three servers sharing etcd: every server takes the new token and
// refuses the old one (API and node registration), an agent joins through
// another server with the new token, a joined agent restarted with the
// old token comes back on its certificate, and a server restarted with the
// old --token uses the new one.
func TestIntegrationTokenRotationServers(t *testing.T) {
	requireRoot(t)
	etcd := storetest.StartEtcd(t)
	ip := hostBridge(t)
	a := startHAServer(t, etcd, ip, nil)
	b := startHAServer(t, etcd, ip, a)
	c := startHAServer(t, etcd, ip, a)
	servers := []*serverProc{a, b, c}
	cs := clientFor(t, a)
	n1 := startAgent(t, b, ip, 1, "--heartbeat-interval", "1s")
	waitNodeReady(t, cs, n1.name)

	oldToken := readToken(t, a)
	rotated := time.Now()
	newToken := rotateToken(t, a)
	if newToken == oldToken {
		t.Fatalf("token rotate kept the token")
	}
	for i, s := range servers {
		eventually(t, 60*time.Second, fmt.Sprintf("server %d's token file holds the new token", i), func() error {
			if got := readToken(t, s); got != newToken {
				return fmt.Errorf("token %q", got)
			}
			return nil
		})
	}
	t.Logf("every server holds the new token %v after the rotation", time.Since(rotated).Round(100*time.Millisecond))
	for i, s := range servers {
		checkTokens(t, s, oldToken, newToken)
		if err := registerWith(t, s, oldToken, fmt.Sprintf("old-token-%d", i)); !errors.Is(err, nodeclient.ErrTokenRefused) {
			t.Errorf("registering through server %d with the old token = %v, want %v", i, err, nodeclient.ErrTokenRefused)
		}
		if err := registerWith(t, s, newToken, fmt.Sprintf("new-token-%d", i)); err != nil {
			t.Errorf("registering through server %d with the new token = %v", i, err)
		}
	}

	// A real agent joins through C, whose token was rotated on A.
	n2 := startAgent(t, c, ip, 2, "--heartbeat-interval", "1s")
	waitNodeReady(t, cs, n2.name)

	// The agent joined before, restarted with the old token on its command
	// line, reconnects with its certificate and runs a pod.
	n1.kill()
	n1.start()
	c.mustMinik(`apiVersion: v1
kind: Pod
metadata: {name: after-rotation}
spec:
  nodeName: node1
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: busybox, imagePullPolicy: Never, command: ["sleep", "3600"]}
`, "apply", "-f", "-")
	waitPodRunning(t, cs, "default", "after-rotation")

	// B, restarted with the old --token, opens the cluster's secrets with
	// the CA it keeps and goes on with the new token.
	b.kill()
	b.startWith("0.0.0.0")
	if got := readToken(t, b); got != newToken {
		t.Errorf("server B restarted with the old --token holds token %q, want the new %q", got, newToken)
	}
	checkTokens(t, b, oldToken, newToken)
	if err := registerWith(t, b, oldToken, "old-token-restarted"); !errors.Is(err, nodeclient.ErrTokenRefused) {
		t.Errorf("registering through restarted B with the old token = %v, want %v", err, nodeclient.ErrTokenRefused)
	}
}
