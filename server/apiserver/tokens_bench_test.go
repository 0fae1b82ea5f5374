package apiserver

import (
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
)

// BenchmarkBearerAuthentication is the cost of authenticating one request
// by bearer token: the fixed admin token, and a pod-bound service account
// token remembered by the cache or checked in full (signature, then the
// service account and the pod read from the bbolt store).
func BenchmarkBearerAuthentication(b *testing.B) {
	_, s := benchServer(b)
	put := func(res *registry.Resource, obj runtime.Object, ns, name string) {
		data, err := registry.EncodeStored(res, obj)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.store.Create(b.Context(), storageKey(res, ns, name), data); err != nil {
			b.Fatal(err)
		}
	}
	meta := func(name, uid string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + uid)}
	}
	put(serviceAccountsResource(), &corev1.ServiceAccount{ObjectMeta: meta("default", "sa")}, "default", "default")
	pods, _ := registry.Lookup("pods")
	pod := testPod("web", map[string]string{"app": "web"})
	pod.ObjectMeta = meta("web", "pod")
	pod.Spec.ServiceAccountName, pod.Spec.NodeName = "default", "n1"
	put(pods, pod, "default", "web")
	key, _ := serviceAccountKeys(b)
	is, err := serviceaccount.NewIssuer(key, "")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	token, err := is.Issue(serviceaccount.Claims{
		ID: "jti", Audiences: []string{serviceaccount.DefaultIssuer}, IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour),
		Namespace: "default", ServiceAccount: serviceaccount.Ref{Name: "default", UID: "uid-sa"},
		Pod: &serviceaccount.Ref{Name: "web", UID: "uid-pod"}, Node: &serviceaccount.Ref{Name: "n1"},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, token string
		ttl         time.Duration
	}{{"fixed", adminToken, 0}, {"serviceaccount-cached", token, 0}, {"serviceaccount-uncached", token, -1}} {
		b.Run(bc.name, func(b *testing.B) {
			sa := serviceaccount.NewAuthenticator(is, s, serviceaccount.AuthenticatorOptions{CacheTTL: bc.ttl})
			authn := auth.NewAuthenticator(nil, map[string]auth.User{adminToken: auth.AdminUser}).WithTokenAuthenticator(sa, sa.Audiences())
			r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods", nil)
			r.Header.Set("Authorization", "Bearer "+bc.token)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := authn.Authenticate(r); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
