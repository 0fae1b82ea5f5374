package apiserver

import (
	"context"
	"log/slog"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/store/storetest"
)

// BenchmarkCreatePodServiceAccount is the cost of ServiceAccount
// admission in a pod create (in process, no HTTP): creates without it
// (a server that issues no tokens) beside creates with it, whose
// account exists and whose pods get the credentials volume.
func BenchmarkCreatePodServiceAccount(b *testing.B) {
	for _, admission := range []bool{false, true} {
		name := "without"
		if admission {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			s := benchAccountsServer(b, admission)
			res, _ := registry.Lookup("pods")
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "p" + strconv.Itoa(i), Namespace: "default"},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox:1.36"}}},
				}
				if _, _, err := s.createObject(ctx, res, pod, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchAccountsServer is an API server over a real store with the
// default ServiceAccount, issuing tokens if admission is set.
func benchAccountsServer(b *testing.B, admission bool) *Server {
	st := storetest.New(b)
	cfg := Config{Store: st, Logger: slog.New(slog.DiscardHandler), ServiceCIDR: "10.43.0.0/16"}
	if admission {
		key, _ := serviceAccountKeys(b)
		is, err := serviceaccount.NewIssuer(key, "")
		if err != nil {
			b.Fatal(err)
		}
		cfg.ServiceAccounts = is
	}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := s.EnsureNamespaces(ctx); err != nil {
		b.Fatal(err)
	}
	res, _ := registry.Lookup("serviceaccounts")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}}
	if _, _, err := s.createObject(ctx, res, sa, false); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkPodServiceAccountAdmission is ServiceAccount admission alone:
// the account read (decoded once, then shared) and the volume and mount
// added.
func BenchmarkPodServiceAccountAdmission(b *testing.B) {
	s := benchAccountsServer(b, true)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox:1.36"}}},
		}
		if err := s.admitPodServiceAccount(ctx, pod); err != nil || len(pod.Spec.Volumes) != 1 {
			b.Fatal(err, pod.Spec.Volumes)
		}
	}
}
