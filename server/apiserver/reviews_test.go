package apiserver

import (
	"net/http"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/rbac"
)

// rbacServer is a test server authorized by RBAC, with the bootstrap
// policy, namespace team, and alice allowed to read pods in team.
type rbacServer struct {
	*testServer
	z *rbac.Authorizer
}

func newRBACServer(t *testing.T) *rbacServer {
	t.Helper()
	var z *rbac.Authorizer
	ts := newTestServer(t, func(c *Config) {
		z = rbac.New(c.Store, nil)
		c.Authorizer, c.Rules = &auth.Authorizer{Policy: z}, z
	})
	ctx := testContext(t)
	ts.ServeLoopback(ctx)
	if err := rbac.Reconcile(ctx, ts.client.RbacV1()); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if err := z.Load(ctx); err != nil {
		t.Fatal(err)
	}
	go z.Run(ctx)
	c := ts.client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().RoleBindings("team").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "pod-reader"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "alice"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := &rbacServer{testServer: ts, z: z}
	rs.waitAllowed(t, alice, auth.Attributes{Verb: "list", Resource: "pods", Namespace: "team"})
	return rs
}

var alice = auth.User{Name: "alice", UID: "a-1", Groups: []string{auth.GroupAuthenticated}}

func (rs *rbacServer) waitAllowed(t *testing.T, u auth.User, a auth.Attributes) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := rs.z.Authorize(t.Context(), u, a); !ok; ok, _ = rs.z.Authorize(t.Context(), u, a) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never allowed %+v", u.Name, a)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clientAs is a JSON client acting as u, impersonating imp if set.
func (rs *rbacServer) clientAs(t *testing.T, u auth.User, imp rest.ImpersonationConfig) kubernetes.Interface {
	t.Helper()
	cfg := rs.LoopbackConfig(u)
	cfg.ContentConfig = rest.ContentConfig{ContentType: "application/json"}
	cfg.Impersonate = imp
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAccessReviews(t *testing.T) {
	rs := newRBACServer(t)
	ctx := testContext(t)
	ac := rs.clientAs(t, alice, rest.ImpersonationConfig{})
	listPods := func(ns string) *authorizationv1.ResourceAttributes {
		return &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: ns}
	}
	for _, tc := range []struct {
		ns   string
		want bool
	}{{"team", true}, {"default", false}} {
		got, err := ac.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: listPods(tc.ns)}}, metav1.CreateOptions{})
		if err != nil || got.Status.Allowed != tc.want {
			t.Errorf("SelfSubjectAccessReview(list pods in %s) = %+v, %v; want allowed %v", tc.ns, got.Status, err, tc.want)
		}
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice", ResourceAttributes: listPods("team")}}
	got, err := rs.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil || !got.Status.Allowed || got.Status.Reason == "" {
		t.Errorf("SubjectAccessReview(alice list pods in team) = %+v, %v; want allowed with a reason", got.Status, err)
	}
	if _, err := ac.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("SubjectAccessReview by alice: err = %v, want Forbidden", err)
	}
	_, err = rs.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: listPods("team")}}, metav1.CreateOptions{})
	invalidField(t, "SubjectAccessReview without user", err, "spec.user")
	_, err = rs.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice"}}, metav1.CreateOptions{})
	invalidField(t, "SubjectAccessReview without attributes", err, "spec.resourceAttributes")
	_, err = rs.client.AuthorizationV1().LocalSubjectAccessReviews("team").Create(ctx, &authorizationv1.LocalSubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice", ResourceAttributes: listPods("default")}}, metav1.CreateOptions{})
	invalidField(t, "LocalSubjectAccessReview in another namespace", err, "spec.resourceAttributes.namespace")
	local, err := rs.client.AuthorizationV1().LocalSubjectAccessReviews("team").Create(ctx, &authorizationv1.LocalSubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice", ResourceAttributes: listPods("team")}}, metav1.CreateOptions{})
	if err != nil || !local.Status.Allowed {
		t.Errorf("LocalSubjectAccessReview = %+v, %v; want allowed", local, err)
	}

	rules, err := ac.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "team"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rules.Status.ResourceRules, func(r authorizationv1.ResourceRule) bool { return slices.Contains(r.Resources, "pods") }) ||
		!slices.ContainsFunc(rules.Status.NonResourceRules, func(r authorizationv1.NonResourceRule) bool { return slices.Contains(r.NonResourceURLs, "/api") }) {
		t.Errorf("SelfSubjectRulesReview(team) = %+v; want the pods rule and the discovery URLs", rules.Status)
	}

	who, err := ac.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "alice" || who.Status.UserInfo.UID != "a-1" ||
		!slices.Contains(who.Status.UserInfo.Groups, auth.GroupAuthenticated) {
		t.Errorf("SelfSubjectReview = %+v, %v; want alice in %s", who, err, auth.GroupAuthenticated)
	}
}

func TestImpersonation(t *testing.T) {
	rs := newRBACServer(t)
	ctx := testContext(t)
	whoami := func(c kubernetes.Interface) (authenticationv1.UserInfo, error) {
		r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return authenticationv1.UserInfo{}, err
		}
		return r.Status.UserInfo, nil
	}
	admin := auth.User{Name: "root", Groups: []string{auth.GroupMasters}}
	info, err := whoami(rs.clientAs(t, admin, rest.ImpersonationConfig{UserName: "alice", UID: "u-9", Groups: []string{"devs"},
		Extra: map[string][]string{"scopes": {"a", "b"}}}))
	if err != nil || info.Username != "alice" || info.UID != "u-9" || !slices.Equal(info.Groups, []string{"devs", auth.GroupAuthenticated}) ||
		!slices.Equal(info.Extra["scopes"], []string{"a", "b"}) {
		t.Errorf("masters impersonating alice: %+v, %v", info, err)
	}
	info, err = whoami(rs.clientAs(t, admin, rest.ImpersonationConfig{UserName: "system:serviceaccount:team:builder"}))
	if err != nil || !slices.Contains(info.Groups, "system:serviceaccounts:team") {
		t.Errorf("masters impersonating a service account: %+v, %v; want its groups", info, err)
	}
	// The impersonated user's rights apply, not the impersonator's.
	_, err = rs.clientAs(t, admin, rest.ImpersonationConfig{UserName: "alice"}).CoreV1().Secrets("team").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list secrets as impersonated alice: err = %v, want Forbidden", err)
	}

	bob := rest.ImpersonationConfig{UserName: "bob"}
	if _, err := whoami(rs.clientAs(t, alice, bob)); !apierrors.IsForbidden(err) {
		t.Errorf("alice impersonating bob without the right: err = %v, want Forbidden", err)
	}
	if _, err := rs.client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "be-bob"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"impersonate"}, APIGroups: []string{""}, Resources: []string{"users"}, ResourceNames: []string{"bob"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-be-bob"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "be-bob"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "alice"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs.waitAllowed(t, alice, auth.Attributes{Verb: "impersonate", Resource: "users", Name: "bob"})
	if info, err := whoami(rs.clientAs(t, alice, bob)); err != nil || info.Username != "bob" {
		t.Errorf("alice impersonating bob: %+v, %v", info, err)
	}
	if _, err := whoami(rs.clientAs(t, alice, rest.ImpersonationConfig{UserName: "bob", Groups: []string{auth.GroupMasters}})); !apierrors.IsForbidden(err) {
		t.Errorf("alice impersonating bob in system:masters: err = %v, want Forbidden", err)
	}

	req, _ := http.NewRequest(http.MethodGet, rs.url+"/api/v1/namespaces", nil)
	req.Header.Set("Impersonate-Group", "devs")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Impersonate-Group without Impersonate-User: status %d, want 400", resp.StatusCode)
	}
}

// TestReviewsRefuseTables checks that a review asked for only as a Table
// is refused with 406, and answered when JSON is acceptable too.
func TestReviewsRefuseTables(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	sar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/", Verb: "get"},
	}}
	post := func(accept string) error {
		var out authorizationv1.SelfSubjectAccessReview
		return ts.client.AuthorizationV1().RESTClient().Post().Resource("selfsubjectaccessreviews").
			SetHeader("Accept", accept).Body(sar).Do(ctx).Into(&out)
	}
	err := post("application/json;as=Table;v=v1;g=meta.k8s.io")
	if st, ok := err.(apierrors.APIStatus); !ok || st.Status().Code != http.StatusNotAcceptable {
		t.Errorf("Table only = %v, want 406", err)
	}
	if err := post("application/json;as=Table;v=v1;g=meta.k8s.io, application/json"); err != nil {
		t.Errorf("Table with a JSON fallback = %v, want the review", err)
	}
}
