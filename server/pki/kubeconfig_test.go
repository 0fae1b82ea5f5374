package pki_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// interfaceIPs returns the addresses of the host's interfaces as strings.
func interfaceIPs() ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out, nil
}

// whoami is the body the test server answers with.
type whoami struct {
	Authenticated bool     `json:"authenticated"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
}

// startServer starts an HTTPS server on 127.0.0.1 with a's TLS
// configuration that reports who the request authenticated as.
func startServer(t *testing.T, a *pki.Authority, ln net.Listener) *httptest.Server {
	t.Helper()
	authn := auth.NewAuthenticator(a.ClientCAPool(), map[string]auth.User{a.AdminToken(): auth.AdminUser})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := authn.Authenticate(r)
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
		}
		json.NewEncoder(w).Encode(whoami{Authenticated: ok, Name: u.Name, Groups: u.Groups})
	}))
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	// Not StartTLS: it would put its own certificate in front of the
	// configuration's GetCertificate.
	srv.Listener = tls.NewListener(srv.Listener, a.ServerTLSConfig())
	srv.Start()
	srv.URL = "https://" + srv.Listener.Addr().String()
	t.Cleanup(srv.Close)
	return srv
}

// listenLocal listens on a free port of 127.0.0.1.
func listenLocal(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func TestKubeconfigLoads(t *testing.T) {
	a, dir := ensure(t, pki.Options{Port: 7443})
	path := filepath.Join(dir, "admin.kubeconfig")
	if path != a.KubeconfigPath() {
		t.Errorf("KubeconfigPath() = %q, want %q", a.KubeconfigPath(), path)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("LoadFromFile = %v", err)
	}
	if err := clientcmd.Validate(*cfg); err != nil {
		t.Errorf("Validate = %v", err)
	}
	if cfg.CurrentContext != pki.KubeconfigContext {
		t.Errorf("current-context = %q, want %q", cfg.CurrentContext, pki.KubeconfigContext)
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	if cluster == nil {
		t.Fatalf("current context names no cluster")
	}
	if cluster.Server != "https://127.0.0.1:7443" {
		t.Errorf("server = %q, want https://127.0.0.1:7443", cluster.Server)
	}
	if diff := cmp.Diff(string(a.CAPEM()), string(cluster.CertificateAuthorityData)); diff != "" {
		t.Errorf("certificate-authority-data (-want +got):\n%s", diff)
	}
}

func TestKubeconfigHandshake(t *testing.T) {
	ln, port := listenLocal(t)
	a, dir := ensure(t, pki.Options{Port: port})
	startServer(t, a, ln)

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		t.Fatalf("BuildConfigFromFlags = %v", err)
	}
	rc.GroupVersion = &schema.GroupVersion{Version: "v1"}
	rc.APIPath = "/api"
	rc.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	rc.Timeout = 10 * time.Second
	client, err := rest.RESTClientFor(rc)
	if err != nil {
		t.Fatalf("RESTClientFor = %v", err)
	}
	body, err := client.Get().AbsPath("/version").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("GET /version = %v (body %s)", err, body)
	}
	var got whoami
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := whoami{Authenticated: true, Name: "system:admin", Groups: []string{"system:masters", "system:authenticated"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("server saw (-want +got):\n%s", diff)
	}
}

// TestKubectlAcceptsKubeconfig runs kubectl against the kubeconfig: the
// one on PATH, else the one bundled in the minik binary named by
// MINIK_BINARY (scripts/test.sh sets it).
func TestKubectlAcceptsKubeconfig(t *testing.T) {
	var argv []string
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		argv = []string{kubectl}
	} else if bin := os.Getenv("MINIK_BINARY"); bin != "" {
		argv = []string{bin, "kubectl"}
	} else if os.Getenv("CI") != "" {
		t.Fatal("no kubectl: neither on PATH nor MINIK_BINARY set")
	} else {
		t.Skip("no kubectl on PATH and MINIK_BINARY unset")
	}
	ln, port := listenLocal(t)
	a, dir := ensure(t, pki.Options{Port: port})
	startServer(t, a, ln)
	args := append(argv[1:], "--kubeconfig", filepath.Join(dir, "admin.kubeconfig"),
		"--request-timeout", "10s", "get", "--raw", "/version")
	out, err := exec.Command(argv[0], args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get --raw /version = %v: %s", err, out)
	}
	if !strings.Contains(string(out), `"name":"system:admin"`) {
		t.Errorf("kubectl output = %s, want the admin identity", out)
	}
}

func TestClientCertificates(t *testing.T) {
	a, dir := ensure(t, pki.Options{})
	other, otherDir := ensure(t, pki.Options{})
	srv := startServer(t, a, nil)

	ownAdmin := loadPair(t, dir)
	foreignAdmin := loadPair(t, otherDir)
	roots := x509.NewCertPool()
	roots.AddCert(a.CACert())

	tests := []struct {
		name     string
		certs    []tls.Certificate
		header   string
		wantCode int // 0: the request must fail
		wantUser string
	}{
		{name: "admin certificate", certs: []tls.Certificate{ownAdmin}, wantCode: 200, wantUser: "system:admin"},
		{name: "no credentials", wantCode: 401},
		{name: "admin token", header: "Bearer " + a.AdminToken(), wantCode: 200, wantUser: "system:admin"},
		{name: "other cluster's token", header: "Bearer " + other.AdminToken(), wantCode: 401},
		{name: "certificate from another CA", certs: []tls.Certificate{foreignAdmin}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost", GetClientCertificate: offer(tc.certs)},
			}}
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := client.Do(req)
			if tc.wantCode == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET = %s, want a failed handshake", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET = %v", err)
			}
			defer resp.Body.Close()
			var got whoami
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode || got.Name != tc.wantUser {
				t.Errorf("GET = %d as %q, want %d as %q", resp.StatusCode, got.Name, tc.wantCode, tc.wantUser)
			}
		})
	}
}

// offer returns a client certificate callback that sends certs[0], if
// any, whether or not the server named its issuer as acceptable.
func offer(certs []tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if len(certs) == 0 {
			return &tls.Certificate{}, nil
		}
		return &certs[0], nil
	}
}

func loadPair(t *testing.T, dir string) tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls/admin.crt"), filepath.Join(dir, "tls/admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func TestServerURL(t *testing.T) {
	tests := []struct {
		bind string
		port int
		want string
	}{
		{"", 0, "https://127.0.0.1:6443"},
		{"", 7443, "https://127.0.0.1:7443"},
		{"0.0.0.0", 6443, "https://127.0.0.1:6443"},
		{"::", 6443, "https://127.0.0.1:6443"},
		{"192.0.2.5", 6443, "https://192.0.2.5:6443"},
		{"fd00::5", 6443, "https://[fd00::5]:6443"},
		{"api.example.com", 443, "https://api.example.com:443"},
	}
	for _, tc := range tests {
		t.Run(tc.bind+":"+strconv.Itoa(tc.port), func(t *testing.T) {
			if got := pki.ServerURL(tc.bind, tc.port); got != tc.want {
				t.Errorf("ServerURL(%q, %d) = %q, want %q", tc.bind, tc.port, got, tc.want)
			}
		})
	}
}

func TestServiceAPIAddrs(t *testing.T) {
	tests := []struct {
		cidrs   string
		want    []string
		wantErr bool
	}{
		{cidrs: "10.43.0.0/16", want: []string{"10.43.0.1"}},
		{cidrs: "10.43.7.9/16", want: []string{"10.43.0.1"}},
		{cidrs: "10.96.0.0/12, fd00:10:96::/112", want: []string{"10.96.0.1", "fd00:10:96::1"}},
		{cidrs: "", want: nil},
		{cidrs: "10.43.0.0", wantErr: true},
		{cidrs: "10.43.0.5/32", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.cidrs, func(t *testing.T) {
			addrs, err := pki.ServiceAPIAddrs(tc.cidrs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ServiceAPIAddrs(%q) error = %v, want error %v", tc.cidrs, err, tc.wantErr)
			}
			got := []string(nil)
			for _, a := range addrs {
				got = append(got, a.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ServiceAPIAddrs(%q) (-want +got):\n%s", tc.cidrs, diff)
			}
		})
	}
	if _, err := pki.Ensure(t.TempDir(), pki.Options{ServiceCIDR: "bogus", Hostname: "h"}); err == nil {
		t.Errorf("Ensure with a bad service CIDR = nil error")
	}
}
