package rbac_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/rbac"
	"github.com/minik-dev/minik/store/storetest"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// env is a real API server on a bbolt store whose authorizer is an RBAC
// Authorizer following the store, with the bootstrap policy written.
type env struct {
	t     *testing.T
	ctx   context.Context
	api   *apiserver.Server
	z     *rbac.Authorizer
	admin kubernetes.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	st := storetest.New(t)
	z := rbac.New(st, lg)
	api, err := apiserver.New(apiserver.Config{Store: st, Logger: lg, ServiceCIDR: "10.43.0.0/24",
		Authorizer: &auth.Authorizer{Policy: z}, Rules: z})
	if err != nil {
		t.Fatalf("apiserver.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if err := api.EnsureNamespaces(ctx); err != nil {
		t.Fatalf("EnsureNamespaces: %v", err)
	}
	done := make(chan struct{}, 2)
	go func() { api.Run(ctx); done <- struct{}{} }()
	admin, err := kubernetes.NewForConfig(api.ServeLoopback(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := rbac.Reconcile(ctx, admin.RbacV1()); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if err := z.Load(ctx); err != nil {
		t.Fatalf("Load: %v", err)
	}
	go func() { z.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return &env{t: t, ctx: ctx, api: api, z: z, admin: admin}
}

// client returns a client of the API acting as u.
func (e *env) client(u auth.User) kubernetes.Interface {
	c, err := kubernetes.NewForConfig(e.api.LoopbackConfig(u))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// waitAllowed waits until the index allows u to do a (want true) or not.
func (e *env) waitAllowed(u auth.User, a auth.Attributes, want bool) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, _ := e.z.Authorize(e.ctx, u, a)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("Authorize(%q, %+v) stayed %v, want %v", u.Name, a, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) createClusterRole(name string, rules ...rbacv1.PolicyRule) {
	e.t.Helper()
	r := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if _, err := e.admin.RbacV1().ClusterRoles().Create(e.ctx, r, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create clusterrole %s: %v", name, err)
	}
}

func (e *env) createRole(ns, name string, rules ...rbacv1.PolicyRule) {
	e.t.Helper()
	r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
	if _, err := e.admin.RbacV1().Roles(ns).Create(e.ctx, r, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create role %s/%s: %v", ns, name, err)
	}
}

// bind binds role (kind Role or ClusterRole) to subjects in ns, or
// cluster-wide when ns is "".
func (e *env) bind(ns, name, kind, role string, subjects ...rbacv1.Subject) {
	e.t.Helper()
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}
	var err error
	if ns == "" {
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: ref, Subjects: subjects}
		_, err = e.admin.RbacV1().ClusterRoleBindings().Create(e.ctx, b, metav1.CreateOptions{})
	} else {
		b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, RoleRef: ref, Subjects: subjects}
		_, err = e.admin.RbacV1().RoleBindings(ns).Create(e.ctx, b, metav1.CreateOptions{})
	}
	if err != nil {
		e.t.Fatalf("create binding %s/%s: %v", ns, name, err)
	}
}

func (e *env) namespace(name string) {
	e.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.admin.CoreV1().Namespaces().Create(e.ctx, ns, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create namespace %s: %v", name, err)
	}
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func serviceAccount(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

func rule(verbs []string, groups []string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

func res(verb, group, resource, sub, ns, name string) auth.Attributes {
	return auth.Attributes{Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Namespace: ns, Name: name}
}
