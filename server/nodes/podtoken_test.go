package nodes_test

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/envelope"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/serviceaccount"
)

// putServiceAccount stores a ServiceAccount in namespace default, as the
// API would store it.
func (e *env) putServiceAccount(name string) *corev1.ServiceAccount {
	e.t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-sa-" + name)}}
	value, err := envelope.Encode(sa, "v1", "ServiceAccount")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.Create(ctxT(e.t), "/registry/serviceaccounts/default/"+name, value); err != nil {
		e.t.Fatal(err)
	}
	return sa
}

func TestPodTokenAuthorization(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := serviceaccount.NewIssuer(key, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, envOptions{configure: func(c *nodes.Config) {
		c.Tokens, c.Now = issuer, func() time.Time { return now }
	}})
	n1, _ := e.register("n1")
	e.register("n2")
	sa := e.putServiceAccount("default")
	e.putServiceAccount("robot")
	mine, theirs := e.createPod("mine", "n1"), e.createPod("theirs", "n2")
	ask := func(p *corev1.Pod, account string) *api.PodTokenRequest {
		return &api.PodTokenRequest{Namespace: "default", PodName: p.Name, PodUid: string(p.UID),
			ServiceAccount: account, Audience: "vault", ExpirationSeconds: 3607}
	}

	resp, err := n1.PodToken(ctxT(t), ask(mine, "default"))
	if err != nil {
		t.Fatalf("PodToken(own pod) = %v", err)
	}
	c, err := issuer.Parse(resp.Token, now)
	if err != nil {
		t.Fatalf("parsing the token: %v", err)
	}
	if c.ServiceAccount.Name != "default" || c.ServiceAccount.UID != string(sa.UID) || c.Pod == nil || c.Pod.UID != string(mine.UID) ||
		c.Node == nil || c.Node.Name != "n1" || len(c.Audiences) != 1 || c.Audiences[0] != "vault" {
		t.Errorf("claims = %+v, want default's bound to pod mine on n1 for vault", c)
	}
	if want := now.Add(3607 * time.Second); !c.Expiry.Equal(want) || resp.ExpirationUnix != want.Unix() {
		t.Errorf("expiry = %v (response %d), want %v", c.Expiry, resp.ExpirationUnix, want)
	}

	// The API's audience at admission's lifetime: valid a year, renewed
	// as if it expired after 3607 s.
	apiReq := ask(mine, "default")
	apiReq.Audience = ""
	resp, err = n1.PodToken(ctxT(t), apiReq)
	if err != nil {
		t.Fatalf("PodToken(API audience) = %v", err)
	}
	if c, err = issuer.Parse(resp.Token, now); err != nil {
		t.Fatal(err)
	}
	warn := now.Add(3607 * time.Second)
	if !c.Expiry.Equal(now.Add(serviceaccount.ExtendedExpiration)) || !c.WarnAfter.Equal(warn) || resp.ExpirationUnix != warn.Unix() ||
		len(c.Audiences) != 1 || c.Audiences[0] != issuer.URL() {
		t.Errorf("claims = %+v, response expiry %d; want exp in a year, warnafter %v, the API's audience", c, resp.ExpirationUnix, warn)
	}
	apiReq.ExpirationSeconds = 3600
	if resp, err = n1.PodToken(ctxT(t), apiReq); err != nil {
		t.Fatal(err)
	}
	if c, err = issuer.Parse(resp.Token, now); err != nil || !c.Expiry.Equal(now.Add(time.Hour)) || !c.WarnAfter.IsZero() {
		t.Errorf("claims of a 3600 s token = %+v, %v; want exp in an hour and no warnafter", c, err)
	}

	other := ask(mine, "default")
	other.PodUid = "another-uid"
	denied := map[string]*api.PodTokenRequest{
		"another node's pod": ask(theirs, "default"),
		"another account":    ask(mine, "robot"),
		"another uid":        other,
		"a missing pod":      {Namespace: "default", PodName: "gone", PodUid: "x", ServiceAccount: "default", ExpirationSeconds: 3607},
	}
	for name, req := range denied {
		if _, err := n1.PodToken(ctxT(t), req); status.Code(err) != codes.PermissionDenied {
			t.Errorf("PodToken(%s) = %v, want PermissionDenied", name, err)
		}
	}
	short := ask(mine, "default")
	short.ExpirationSeconds = 599
	if _, err := n1.PodToken(ctxT(t), short); status.Code(err) != codes.InvalidArgument {
		t.Errorf("PodToken(599 s) = %v, want InvalidArgument", err)
	}
	if _, err := e.dial(nil).PodToken(ctxT(t), ask(mine, "default")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("PodToken without a certificate = %v, want Unauthenticated", err)
	}
}

func TestPodTokenWithoutIssuer(t *testing.T) {
	e := newEnv(t, envOptions{})
	n1, _ := e.register("n1")
	p := e.createPod("mine", "n1")
	req := &api.PodTokenRequest{Namespace: "default", PodName: p.Name, PodUid: string(p.UID), ServiceAccount: "default", ExpirationSeconds: 3607}
	if _, err := n1.PodToken(ctxT(t), req); status.Code(err) != codes.Unimplemented {
		t.Errorf("PodToken = %v, want Unimplemented", err)
	}
}
