//go:build integration

package test

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestIntegrationRBAC binds a service account to the bootstrap view role
// in one namespace and uses a real token of it (TokenRequest): it lists
// pods there, is refused pods elsewhere, Secrets and a binding to edit;
// kubectl's auth can-i and whoami answer as RBAC decides.
func TestIntegrationRBAC(t *testing.T) {
	s := startServer(t)
	admin := clientFor(t, s)
	ctx := context.Background()
	for _, ns := range []string{"rbac-a", "rbac-b"} {
		mustCreate(t, func() error {
			_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		})
	}
	mustCreate(t, func() error {
		_, err := admin.CoreV1().ServiceAccounts("rbac-a").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{})
		return err
	})
	bindView := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader"}},
	}
	mustCreate(t, func() error {
		_, err := admin.RbacV1().RoleBindings("rbac-a").Create(ctx, bindView, metav1.CreateOptions{})
		return err
	})
	tr, err := admin.CoreV1().ServiceAccounts("rbac-a").CreateToken(ctx, "reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	sa := tokenClient(t, s, tr.Status.Token)

	// view's rules come from aggregation: wait for them.
	eventually(t, 30*time.Second, "service account lists pods in rbac-a", func() error {
		_, err := sa.CoreV1().Pods("rbac-a").List(ctx, metav1.ListOptions{})
		return err
	})
	if _, err := sa.CoreV1().Pods("rbac-b").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list pods in rbac-b: err = %v, want 403", err)
	}
	if _, err := sa.CoreV1().Secrets("rbac-a").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets in rbac-a: err = %v, want 403", err)
	}
	bindEdit := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader"}},
	}
	if _, err := sa.RbacV1().RoleBindings("rbac-a").Create(ctx, bindEdit, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create a binding to edit without rights on bindings: err = %v, want 403", err)
	}
	// Allowed to write bindings, it still may not grant what it lacks.
	mustCreate(t, func() error {
		_, err := admin.RbacV1().Roles("rbac-a").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "binder"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"create"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}}}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := admin.RbacV1().RoleBindings("rbac-a").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader-binder"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "binder"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader"}}}, metav1.CreateOptions{})
		return err
	})
	eventually(t, 10*time.Second, "a binding to view by the service account", func() error {
		again := bindView.DeepCopy()
		again.Name = "reader-view-2"
		_, err := sa.RbacV1().RoleBindings("rbac-a").Create(ctx, again, metav1.CreateOptions{})
		return err
	})
	_, err = sa.RbacV1().RoleBindings("rbac-a").Create(ctx, bindEdit, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "not currently held") {
		t.Errorf("create a binding to edit: err = %v, want 403 naming the escalation", err)
	}

	const as = "system:serviceaccount:rbac-a:reader"
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"list", "pods", "-n", "rbac-a"}, "yes", 0},
		{[]string{"list", "pods", "-n", "rbac-b"}, "no", 1},
		{[]string{"get", "secrets", "-n", "rbac-a"}, "no", 1},
	} {
		out, code := s.minik("", append([]string{"kubectl", "auth", "can-i", "--as", as}, tc.args...)...)
		if strings.TrimSpace(out) != tc.want || code != tc.code {
			t.Errorf("kubectl auth can-i %v as %s = %q (exit %d), want %q (exit %d)", tc.args, as, out, code, tc.want, tc.code)
		}
	}
	out := s.mustMinik("", "kubectl", "auth", "whoami", "--as", as)
	if !strings.Contains(out, as) || !strings.Contains(out, "system:serviceaccounts:rbac-a") {
		t.Errorf("kubectl auth whoami --as %s:\n%s", as, out)
	}
	out = s.mustMinik("", "kubectl", "get", "clusterrolebindings", "cluster-admin", "-o", "wide")
	if !strings.Contains(out, "ClusterRole/cluster-admin") || !strings.Contains(out, "system:masters") {
		t.Errorf("kubectl get clusterrolebinding cluster-admin -o wide:\n%s", out)
	}
}

// tokenClient is a client of s that authenticates with a bearer token
// only, trusting the server's CA.
func tokenClient(t *testing.T, s *serverProc, token string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	anon := rest.AnonymousClientConfig(cfg)
	anon.BearerToken = token
	anon.QPS, anon.Burst = -1, -1
	return kubernetes.NewForConfigOrDie(anon)
}
