package agent

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/serviceaccount"
)

// The agent gets its pods' tokens from the node service, and only theirs.
func TestPodTokens(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := serviceaccount.NewIssuer(key, "")
	if err != nil {
		t.Fatal(err)
	}
	c := newClusterWith(t, func(cfg *nodes.Config) { cfg.Tokens = issuer })
	a := newAgent(t, c, c.ca.Token(), t.TempDir())
	j, err := a.join(ctxT(t), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer j.conn.Close()
	src := podTokens{client: api.NewNodeClient(j.conn)}
	if _, err := c.admin.ServiceAccounts("default").Create(ctxT(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for _, node := range []string{"n1", "n2"} {
		p, err := c.admin.Pods("default").Create(ctxT(t), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "on-" + node},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods[node] = p
	}

	before := time.Now().Truncate(time.Second)
	token, expiry, err := src.PodToken(ctxT(t), pods["n1"], "vault", 600)
	if err != nil {
		t.Fatalf("PodToken(own pod) = %v", err)
	}
	claims, err := issuer.Parse(token, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Pod == nil || claims.Pod.UID != string(pods["n1"].UID) || claims.Audiences[0] != "vault" || !expiry.Equal(claims.Expiry.Truncate(time.Second)) ||
		expiry.Before(before.Add(600*time.Second)) {
		t.Errorf("token claims %+v, expiry %v; want bound to on-n1 for vault, expiring in 600 s", claims, expiry)
	}
	if _, _, err := src.PodToken(ctxT(t), pods["n2"], "", 600); status.Code(err) != codes.PermissionDenied {
		t.Errorf("PodToken(another node's pod) = %v, want PermissionDenied", err)
	}
}
