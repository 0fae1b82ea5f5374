package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/store/storetest"
)

// `kubectl create token NAME` against the API server prints a token that
// the server accepts as the service account.
func TestCreateToken(t *testing.T) {
	isolate(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is, err := serviceaccount.NewIssuer(key, "")
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	var api *apiserver.Server
	sa := serviceaccount.NewAuthenticator(is, serviceaccount.GetterFunc(api0(&api)), serviceaccount.AuthenticatorOptions{})
	authn := auth.NewAuthenticator(nil, map[string]auth.User{"t": auth.AdminUser}).WithTokenAuthenticator(sa, sa.Audiences())
	api, err = apiserver.New(apiserver.Config{
		Store: st, Authenticator: authn, Authorizer: &auth.Authorizer{}, ServiceAccounts: is,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.EnsureNamespaces(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The ServiceAccount is stored as the registry stores objects.
	res, ok := registry.Lookup("serviceaccounts")
	if !ok {
		res = &registry.Resource{Name: "serviceaccounts", Kind: "ServiceAccount", Namespaced: true}
	}
	data, err := registry.EncodeStored(res, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: "robot", Namespace: "default", UID: "robot-uid", CreationTimestamp: metav1.Now(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(t.Context(), "/registry/serviceaccounts/default/robot", data); err != nil {
		t.Fatal(err)
	}
	// kubectl sends credentials only over TLS.
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	kubeconfig := writeKubeconfig(t, srv.URL)
	data, err = os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "    server: ", "    insecure-skip-tls-verify: true\n    server: ", 1))
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)

	out, _, err := runArgs(t, "create", "token", "robot", "--duration", "20m", "--audience", serviceaccount.DefaultIssuer)
	if err != nil || strings.Count(out, ".") != 2 {
		t.Fatalf("create token robot = %q, %v; want a JWT", out, err)
	}
	c, err := is.Parse(strings.TrimSpace(out), time.Now())
	if err != nil || c.Subject() != "system:serviceaccount:default:robot" || c.Expiry.Sub(c.IssuedAt) != 20*time.Minute {
		t.Errorf("token claims = %+v, %v; want robot's, valid 20m", c, err)
	}
	_, _, err = runArgs(t, "create", "token", "robot", "--duration", "5m")
	if err == nil || !strings.Contains(err.Error(), "spec.expirationSeconds") {
		t.Errorf("create token --duration 5m = %v, want an error naming spec.expirationSeconds", err)
	}
	_, _, err = runArgs(t, "create", "token", "ghost")
	if err == nil || !strings.Contains(err.Error(), `serviceaccounts "ghost" not found`) {
		t.Errorf("create token ghost = %v, want not found", err)
	}
}

// api0 defers to the API server *p once it exists.
func api0(p **apiserver.Server) func(ctx context.Context, resource, namespace, name string) (string, time.Time, error) {
	return func(ctx context.Context, resource, namespace, name string) (string, time.Time, error) {
		return (*p).ObjectUID(ctx, resource, namespace, name)
	}
}
