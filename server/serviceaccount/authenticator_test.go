package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/minik-dev/minik/server/auth"
)

var errNotFound = errors.New("not found")

// objects is an in-memory Getter: resource/namespace/name → uid.
type objects struct {
	mu      sync.Mutex
	uids    map[string]string
	deleted map[string]time.Time
	reads   int
}

func newObjects() *objects {
	return &objects{
		uids: map[string]string{
			"serviceaccounts/ns1/default": "sa-uid", "pods/ns1/web": "pod-uid", "secrets/ns1/s": "secret-uid",
		},
		deleted: map[string]time.Time{},
	}
}

func (o *objects) ObjectUID(_ context.Context, resource, namespace, name string) (string, time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reads++
	key := resource + "/" + namespace + "/" + name
	uid, ok := o.uids[key]
	if !ok {
		return "", time.Time{}, fmt.Errorf("%s: %w", key, errNotFound)
	}
	return uid, o.deleted[key], nil
}

func (o *objects) set(key, uid string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if uid == "" {
		delete(o.uids, key)
		return
	}
	o.uids[key] = uid
}

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestAuthenticateToken(t *testing.T) {
	is := testIssuer(t)
	tok, err := is.Issue(podClaims(testTime))
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(is, newObjects(), AuthenticatorOptions{Now: (&clock{testTime}).now})
	u, accepted, ok := a.AuthenticateToken(context.Background(), tok, nil)
	if !ok {
		t.Fatalf("AuthenticateToken = false, want the service account")
	}
	want := auth.User{
		Name: "system:serviceaccount:ns1:default", UID: "sa-uid",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ns1"},
		Extra: map[string][]string{
			auth.ExtraPodName: {"web"}, auth.ExtraPodUID: {"pod-uid"},
			auth.ExtraNodeName: {"n1"}, auth.ExtraNodeUID: {"node-uid"}, auth.ExtraCredentialID: {"JTI=f8a7d2e0-1"},
		},
	}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
	if !slices.Equal(accepted, []string{DefaultIssuer}) {
		t.Errorf("accepted audiences = %v, want [%s]", accepted, DefaultIssuer)
	}
	if ns, name, ok := auth.ServiceAccount(u); !ok || ns != "ns1" || name != "default" {
		t.Errorf("auth.ServiceAccount = %q, %q, %v; want ns1, default, true", ns, name, ok)
	}
}

func TestAuthenticateTokenRefuses(t *testing.T) {
	is := testIssuer(t)
	_, otherKey := testKeys(t)
	other, _ := NewIssuer(otherKey, "")
	issue := func(is *Issuer, mutate func(*Claims)) string {
		c := podClaims(testTime)
		mutate(&c)
		tok, err := is.Issue(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	same := func(*Claims) {}
	tests := []struct {
		name      string
		token     string
		change    func(*objects)
		audiences []string
	}{
		{name: "forged", token: issue(other, same)},
		{name: "expired", token: issue(is, func(c *Claims) { c.Expiry = testTime.Add(-2 * Leeway) })},
		{name: "wrong audience", token: issue(is, func(c *Claims) { c.Audiences = []string{"vault"} })},
		{name: "review for another audience", token: issue(is, same), audiences: []string{"vault"}},
		{name: "pod deleted", token: issue(is, same), change: func(o *objects) { o.set("pods/ns1/web", "") }},
		{name: "pod recreated", token: issue(is, same), change: func(o *objects) { o.set("pods/ns1/web", "other") }},
		{name: "pod deleting for long", token: issue(is, same), change: func(o *objects) {
			o.deleted["pods/ns1/web"] = testTime.Add(-2 * Leeway)
		}},
		{name: "service account deleted", token: issue(is, same), change: func(o *objects) { o.set("serviceaccounts/ns1/default", "") }},
		{name: "secret deleted", token: issue(is, func(c *Claims) { c.Pod, c.Node, c.Secret = nil, nil, &Ref{Name: "s", UID: "secret-uid"} }),
			change: func(o *objects) { o.set("secrets/ns1/s", "") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := newObjects()
			if tc.change != nil {
				tc.change(objs)
			}
			a := NewAuthenticator(is, objs, AuthenticatorOptions{Now: (&clock{testTime}).now})
			if u, _, ok := a.AuthenticateToken(context.Background(), tc.token, tc.audiences); ok {
				t.Errorf("AuthenticateToken = %q, true; want refused", u.Name)
			}
		})
	}
}

// An accepted token is remembered for CacheTTL: the objects it names are
// read again, and a deleted pod's token refused, once that has passed.
func TestAuthenticateTokenCache(t *testing.T) {
	is := testIssuer(t)
	tok, _ := is.Issue(podClaims(testTime))
	objs := newObjects()
	clk := &clock{testTime}
	a := NewAuthenticator(is, objs, AuthenticatorOptions{Now: clk.now})
	ctx := context.Background()
	if _, _, ok := a.AuthenticateToken(ctx, tok, nil); !ok {
		t.Fatal("first AuthenticateToken refused")
	}
	reads := objs.reads
	objs.set("pods/ns1/web", "")
	clk.t = clk.t.Add(DefaultCacheTTL - time.Second)
	if _, _, ok := a.AuthenticateToken(ctx, tok, nil); !ok || objs.reads != reads {
		t.Errorf("within the TTL: ok %v after %d more reads, want true after none", ok, objs.reads-reads)
	}
	clk.t = clk.t.Add(time.Second)
	if _, _, ok := a.AuthenticateToken(ctx, tok, nil); ok {
		t.Errorf("after the TTL, the deleted pod's token was accepted")
	}
	noCache := NewAuthenticator(is, newObjects(), AuthenticatorOptions{Now: clk.now, CacheTTL: -1})
	if _, _, ok := noCache.AuthenticateToken(ctx, tok, nil); !ok || len(noCache.cache) != 0 {
		t.Errorf("CacheTTL -1: ok %v with %d cached, want true with none", ok, len(noCache.cache))
	}
}

// BenchmarkAuthenticateToken is the cost of one bearer token check: a
// cache hit, and a full check (signature and two object reads).
func BenchmarkAuthenticateToken(b *testing.B) {
	is := testIssuer(b)
	tok, _ := is.Issue(podClaims(time.Now()))
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			a := NewAuthenticator(is, newObjects(), AuthenticatorOptions{CacheTTL: bc.ttl})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := a.AuthenticateToken(ctx, tok, nil); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
