package apiserver

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
)

var (
	saKeysOnce sync.Once
	saKeys     [2]*rsa.PrivateKey
)

// serviceAccountKeys returns two RSA keys made once for the package.
func serviceAccountKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	saKeysOnce.Do(func() {
		for i := range saKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			saKeys[i] = k
		}
	})
	return saKeys[0], saKeys[1]
}

const adminToken = "admin-token"

// tokenServer is a test server that issues and accepts service account
// tokens, with the fixed authorizer and an admin bearer token.
type tokenServer struct {
	*testServer
	issuer *serviceaccount.Issuer
	admin  kubernetes.Interface
}

// newTokenServer serves tokens. The authenticator has no cache, so that
// every request reads the objects its token names.
func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	ts := newTestServer(t)
	key, _ := serviceAccountKeys(t)
	is, err := serviceaccount.NewIssuer(key, "")
	if err != nil {
		t.Fatal(err)
	}
	sa := serviceaccount.NewAuthenticator(is, ts.Server, serviceaccount.AuthenticatorOptions{CacheTTL: -1})
	ts.cfg.ServiceAccounts = is
	ts.cfg.Authenticator = auth.NewAuthenticator(nil, map[string]auth.User{adminToken: auth.AdminUser}).
		WithTokenAuthenticator(sa, sa.Audiences())
	ts.cfg.Authorizer = &auth.Authorizer{}
	return &tokenServer{testServer: ts, issuer: is, admin: ts.bearerClient(t, adminToken)}
}

// bearerClient is a JSON client of ts, as kubectl, sending token.
func (ts *testServer) bearerClient(t *testing.T, token string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{
		Host: ts.url, QPS: -1, BearerToken: token,
		ContentConfig: rest.ContentConfig{ContentType: "application/json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// putServiceAccount stores a ServiceAccount as the registry would and
// returns its uid.
func (ts *tokenServer) putServiceAccount(t *testing.T, namespace, name string) types.UID {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: namespace, UID: types.UID("sa-" + namespace + "-" + name), CreationTimestamp: metav1.Now(),
	}}
	res := serviceAccountsResource()
	data, err := registry.EncodeStored(res, sa)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.Create(testContext(t), storageKey(res, namespace, name), data); err != nil {
		t.Fatal(err)
	}
	return sa.UID
}

// putSecret stores a Secret as the registry would.
func (ts *tokenServer) putSecret(t *testing.T, namespace, name string) types.UID {
	t.Helper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: namespace, UID: types.UID("secret-" + name), CreationTimestamp: metav1.Now(),
	}}
	res := &registry.Resource{Name: "secrets", Kind: "Secret", Namespaced: true}
	data, err := registry.EncodeStored(res, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.Create(testContext(t), storageKey(res, namespace, name), data); err != nil {
		t.Fatal(err)
	}
	return secret.UID
}

// setUp makes namespace "team" with service account "default" and pod
// "web" running as it on node n1.
func (ts *tokenServer) setUp(t *testing.T) *corev1.Pod {
	t.Helper()
	ctx := testContext(t)
	if _, err := ts.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.putServiceAccount(t, "team", "default")
	if _, err := ts.admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := testPod("web", nil)
	pod.Spec.ServiceAccountName = "default"
	pod.Spec.NodeName = "n1"
	pod, err := ts.admin.CoreV1().Pods("team").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// createToken asks for a token as `kubectl create token` does.
func (ts *tokenServer) createToken(ctx context.Context, name string, spec authenticationv1.TokenRequestSpec) (*authenticationv1.TokenRequest, error) {
	return ts.admin.CoreV1().ServiceAccounts("team").CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
}

func TestTokenRequestBearer(t *testing.T) {
	ts := newTokenServer(t)
	pod := ts.setUp(t)
	ctx := testContext(t)
	before := time.Now().Truncate(time.Second)
	tr, err := ts.createToken(ctx, "default", authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web", UID: pod.UID},
	})
	if err != nil {
		t.Fatalf("CreateToken = %v", err)
	}
	if tr.Status.Token == "" || !slices.Equal(tr.Spec.Audiences, []string{serviceaccount.DefaultIssuer}) || ptr.Deref(tr.Spec.ExpirationSeconds, 0) != 3600 {
		t.Errorf("TokenRequest = audiences %v expiration %v token %d bytes; want [%s], 3600 and a token",
			tr.Spec.Audiences, ptr.Deref(tr.Spec.ExpirationSeconds, 0), len(tr.Status.Token), serviceaccount.DefaultIssuer)
	}
	if exp := tr.Status.ExpirationTimestamp.Time; exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("expirationTimestamp = %v, want an hour from now", exp)
	}
	c, err := ts.issuer.Parse(tr.Status.Token, time.Now())
	if err != nil {
		t.Fatalf("Parse(issued token) = %v", err)
	}
	node, err := ts.admin.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Pod == nil || c.Pod.UID != string(pod.UID) || c.Node == nil || *c.Node != (serviceaccount.Ref{Name: "n1", UID: string(node.UID)}) ||
		c.ServiceAccount.UID != "sa-team-default" || c.ID == "" {
		t.Errorf("claims = pod %v node %v account %v jti %q; want the pod, node n1 with its uid, the account's uid and a jti", c.Pod, c.Node, c.ServiceAccount, c.ID)
	}
	// The kubelet's client sends protobuf.
	pb, err := kubernetes.NewForConfig(&rest.Config{
		Host: ts.url, QPS: -1, BearerToken: adminToken,
		ContentConfig: rest.ContentConfig{ContentType: protobufType, AcceptContentTypes: protobufType + ",application/json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pbTR, err := pb.CoreV1().ServiceAccounts("team").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(7200)), Audiences: []string{"vault"}},
	}, metav1.CreateOptions{})
	if err != nil || pbTR.Status.Token == "" || ptr.Deref(pbTR.Spec.ExpirationSeconds, 0) != 7200 || !slices.Equal(pbTR.Spec.Audiences, []string{"vault"}) {
		t.Errorf("CreateToken over protobuf = %+v, %v; want a token for vault, 7200 s", pbTR, err)
	}
	sa := ts.bearerClient(t, tr.Status.Token)
	// The token authenticates (403, not 401, naming the account); without
	// an RBAC binding the account may do nothing, even in its namespace.
	_, err = sa.CoreV1().Pods("team").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "system:serviceaccount:team:default"`) {
		t.Errorf("List pods in its own namespace with the token = %v, want 403 for the account", err)
	}
	if _, err := sa.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("List pods in another namespace = %v, want 403", err)
	}
	if _, err := sa.CoreV1().Pods("team").Create(ctx, testPod("x", nil), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("Create a pod = %v, want 403", err)
	}
}

func TestBearerTokenRefused(t *testing.T) {
	ts := newTokenServer(t)
	pod := ts.setUp(t)
	ctx := testContext(t)
	bound := authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web"}}
	issue := func(spec authenticationv1.TokenRequestSpec) string {
		tr, err := ts.createToken(ctx, "default", spec)
		if err != nil {
			t.Fatalf("CreateToken = %v", err)
		}
		return tr.Status.Token
	}
	_, otherKey := serviceAccountKeys(t)
	other, _ := serviceaccount.NewIssuer(otherKey, "")
	now := time.Now()
	claims := serviceaccount.Claims{
		Audiences: []string{serviceaccount.DefaultIssuer}, IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour),
		Namespace: "team", ServiceAccount: serviceaccount.Ref{Name: "default", UID: "sa-team-default"},
	}
	forged, _ := other.Issue(claims)
	if good, _ := ts.issuer.Issue(claims); !ts.authenticates(t, good) {
		t.Fatalf("the server's own issuer's token was refused")
	}
	claims.IssuedAt, claims.NotBefore, claims.Expiry = now.Add(-3*time.Hour), now.Add(-3*time.Hour), now.Add(-2*time.Hour)
	expired, _ := ts.issuer.Issue(claims)
	wrongAudience := issue(authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}})
	podToken := issue(bound)
	accountToken := issue(authenticationv1.TokenRequestSpec{})
	if !ts.authenticates(t, podToken) || !ts.authenticates(t, accountToken) {
		t.Fatalf("fresh tokens refused")
	}
	if err := ts.admin.CoreV1().Pods("team").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"forged signature": forged, "expired": expired, "wrong audience": wrongAudience,
		"deleted pod": podToken, "garbage": "abc.def.ghi",
	} {
		if ts.authenticates(t, tok) {
			t.Errorf("%s token accepted, want 401", name)
		}
	}
	if !ts.authenticates(t, accountToken) {
		t.Errorf("unbound token refused after the pod's deletion")
	}
	uid := ts.putSecret(t, "team", "s")
	secretToken := issue(authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: "s", UID: uid}})
	if c, err := ts.issuer.Parse(secretToken, time.Now()); err != nil || c.Secret == nil || c.Secret.UID != string(uid) {
		t.Errorf("secret-bound token claims = %+v, %v; want secret uid %s", c.Secret, err, uid)
	}
	if !ts.authenticates(t, secretToken) {
		t.Errorf("secret-bound token refused")
	}
	if _, _, err := ts.store.Delete(ctx, "/registry/secrets/team/s", 0); err != nil {
		t.Fatal(err)
	}
	if ts.authenticates(t, secretToken) {
		t.Errorf("deleted secret's token accepted, want 401")
	}
	if _, _, err := ts.store.Delete(ctx, storageKey(serviceAccountsResource(), "team", "default"), 0); err != nil {
		t.Fatal(err)
	}
	if ts.authenticates(t, accountToken) {
		t.Errorf("deleted service account's token accepted, want 401")
	}
}

// authenticates reports whether a request with token as bearer passes
// authentication (the response is not 401).
func (ts *tokenServer) authenticates(t *testing.T, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/api/v1/namespaces/team/pods", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusUnauthorized
}

func TestTokenRequestRefused(t *testing.T) {
	ts := newTokenServer(t)
	pod := ts.setUp(t)
	ctx := testContext(t)
	ts.putServiceAccount(t, "team", "builder")
	podRef := func(name string, uid types.UID) *authenticationv1.BoundObjectReference {
		return &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: name, UID: uid}
	}
	tests := []struct {
		name    string
		account string
		spec    authenticationv1.TokenRequestSpec
		code    int32
		field   string
	}{
		{"under ten minutes", "default", authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(599))}, 422, "spec.expirationSeconds"},
		{"over 2^32 seconds", "default", authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(1<<32 + 1))}, 422, "spec.expirationSeconds"},
		{"empty audience", "default", authenticationv1.TokenRequestSpec{Audiences: []string{""}}, 422, "spec.audiences[0]"},
		{"bound without name", "default", authenticationv1.TokenRequestSpec{BoundObjectRef: podRef("", "")}, 422, "spec.boundObjectRef.name"},
		{"no such account", "ghost", authenticationv1.TokenRequestSpec{}, 404, ""},
		{"no such pod", "default", authenticationv1.TokenRequestSpec{BoundObjectRef: podRef("gone", "")}, 404, ""},
		{"pod uid differs", "default", authenticationv1.TokenRequestSpec{BoundObjectRef: podRef("web", "other")}, 409, ""},
		{"pod of another account", "builder", authenticationv1.TokenRequestSpec{BoundObjectRef: podRef("web", pod.UID)}, 400, ""},
		{"bound to a node", "default", authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: "n1"}}, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ts.createToken(ctx, tc.account, tc.spec)
			var se *apierrors.StatusError
			if !errorsAs(err, &se) || se.ErrStatus.Code != tc.code {
				t.Fatalf("CreateToken = %v, want %d", err, tc.code)
			}
			if tc.field != "" && !strings.Contains(statusFields(err), tc.field) {
				t.Errorf("causes = %q, want field %s", statusFields(err), tc.field)
			}
		})
	}
	// rawRequest sends no credentials.
	if code, _ := rawRequest(t, ts.testServer, http.MethodPost, "/api/v1/namespaces/team/serviceaccounts/default/token", "application/json", []byte(`{}`)); code != http.StatusUnauthorized {
		t.Errorf("POST token without credentials = %d, want 401", code)
	}
	if code, st := rawRequest(t, ts.testServer, http.MethodPost, "/api/v1/namespaces/team/serviceaccounts/default/token?x", "application/json", []byte(`{}`)); code != http.StatusUnauthorized || st.Reason != metav1.StatusReasonUnauthorized {
		t.Errorf("POST token without credentials = %d %s, want 401 Unauthorized", code, st.Reason)
	}
}

func errorsAs(err error, se **apierrors.StatusError) bool {
	s, ok := err.(*apierrors.StatusError)
	*se = s
	return ok
}

func TestTokenReview(t *testing.T) {
	ts := newTokenServer(t)
	ts.setUp(t)
	ctx := testContext(t)
	tr, err := ts.createToken(ctx, "default", authenticationv1.TokenRequestSpec{
		Audiences:      []string{serviceaccount.DefaultIssuer, "vault"},
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web"},
	})
	if err != nil {
		t.Fatal(err)
	}
	review := func(c kubernetes.Interface, token string, audiences ...string) (*authenticationv1.TokenReview, error) {
		return c.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences},
		}, metav1.CreateOptions{})
	}
	got, err := review(ts.admin, tr.Status.Token, "vault", "other")
	if err != nil {
		t.Fatalf("TokenReview = %v", err)
	}
	u := got.Status.User
	if !got.Status.Authenticated || u.Username != "system:serviceaccount:team:default" || u.UID != "sa-team-default" ||
		!slices.Equal(got.Status.Audiences, []string{"vault"}) || !slices.Contains(u.Groups, "system:serviceaccounts:team") ||
		!slices.Equal(u.Extra[auth.ExtraPodName], []string{"web"}) || !slices.Equal(u.Extra[auth.ExtraNodeName], []string{"n1"}) {
		t.Errorf("TokenReview status = %+v", got.Status)
	}
	if got, err := review(ts.admin, tr.Status.Token, "other"); err != nil || got.Status.Authenticated || got.Status.Error == "" {
		t.Errorf("TokenReview(other audience) = %+v, %v; want not authenticated, with an error", got.Status, err)
	}
	if got, err := review(ts.admin, "forged"); err != nil || got.Status.Authenticated {
		t.Errorf("TokenReview(forged) = %+v, %v; want not authenticated", got.Status, err)
	}
	if _, err := review(ts.admin, ""); !apierrors.IsBadRequest(err) {
		t.Errorf("TokenReview(no token) = %v, want 400", err)
	}
	if _, err := review(ts.bearerClient(t, tr.Status.Token), tr.Status.Token); !apierrors.IsForbidden(err) {
		t.Errorf("TokenReview by a service account = %v, want 403", err)
	}
}

func TestTokenDiscovery(t *testing.T) {
	ts := newTokenServer(t)
	ts.setUp(t)
	ctx := testContext(t)
	tr, err := ts.createToken(ctx, "default", authenticationv1.TokenRequestSpec{})
	if err != nil {
		t.Fatal(err)
	}
	saClient := ts.bearerClient(t, tr.Status.Token)
	rc := saClient.CoreV1().RESTClient()
	var cfg struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	data, err := rc.Get().AbsPath(serviceaccount.OpenIDConfigPath).DoRaw(ctx)
	if err != nil || json.Unmarshal(data, &cfg) != nil || cfg.Issuer != serviceaccount.DefaultIssuer || cfg.JWKSURI != serviceaccount.DefaultIssuer+serviceaccount.JWKSPath {
		t.Errorf("GET %s as a service account = %s, %v", serviceaccount.OpenIDConfigPath, data, err)
	}
	data, err = rc.Get().AbsPath(serviceaccount.JWKSPath).DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET %s = %v", serviceaccount.JWKSPath, err)
	}
	verifyWithJWKS(t, data, tr.Status.Token)
	if code, _ := rawRequest(t, ts.testServer, http.MethodGet, serviceaccount.JWKSPath, "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET %s without credentials = %d, want 401", serviceaccount.JWKSPath, code)
	}
	groups, err := ts.admin.Discovery().ServerGroups()
	if err != nil || !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "authentication.k8s.io" }) {
		t.Errorf("ServerGroups = %v, %v; want authentication.k8s.io", groups, err)
	}
	list, err := ts.admin.Discovery().ServerResourcesForGroupVersion("authentication.k8s.io/v1")
	var names []string
	if list != nil {
		for _, r := range list.APIResources {
			names = append(names, r.Name)
		}
	}
	if err != nil || !slices.Equal(names, []string{"tokenreviews", "selfsubjectreviews"}) {
		t.Errorf("authentication.k8s.io/v1 resources = %v, %v; want tokenreviews and selfsubjectreviews", names, err)
	}
}

// verifyWithJWKS checks token's RS256 signature with the JWKS key, using
// crypto/rsa alone rather than the code that signed it.
func verifyWithJWKS(t *testing.T, jwks []byte, token string) {
	t.Helper()
	var set struct{ Keys []struct{ Kid, N, E string } }
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", jwks, err)
	}
	n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	parts := strings.Split(token, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("token does not verify with the served JWKS: %v", err)
	}
}
