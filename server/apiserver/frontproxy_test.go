package apiserver

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
)

func TestSetRemoteUser(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "https://api.default.svc/apis/wardle.example.com/v1alpha1", nil)
	r.Header = http.Header{
		"Authorization":                 {"Bearer secret"},
		"Impersonate-User":              {"root"},
		"Impersonate-Extra-Scopes":      {"all"},
		"X-Remote-User":                 {"mallory"},
		"X-Remote-Uid":                  {"0"},
		"X-Remote-Group":                {"system:masters"},
		"X-Remote-Extra-Scopes":         {"everything"},
		"X-Remote-Extra-Example.com%2f": {"spoofed"},
		"Accept":                        {"application/json"},
	}
	u := auth.User{Name: "alice", UID: "a-1", Groups: []string{"devs", "system:authenticated"},
		Extra: map[string][]string{"scopes": {"view", "edit"}, "example.com/team": {"blue"}}}
	setRemoteUser(r, u)
	want := http.Header{
		"X-Remote-User":                     {"alice"},
		"X-Remote-Uid":                      {"a-1"},
		"X-Remote-Group":                    {"devs", "system:authenticated"},
		"X-Remote-Extra-Scopes":             {"view", "edit"},
		"X-Remote-Extra-Example.com%2fteam": {"blue"},
		"Accept":                            {"application/json"},
	}
	if diff := cmp.Diff(want, r.Header); diff != "" {
		t.Errorf("headers after setRemoteUser (-want +got):\n%s", diff)
	}
}

func TestAPIServiceProxyPresentsFrontProxyCertificate(t *testing.T) {
	authority, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) { c.FrontProxyCertificate = authority.FrontProxyClientCertificate })
	backend := newWardleBackend(t)
	ts.cfg.PodStreams = &tunnelTo{addr: backend.Listener.Addr().String()}
	ts.serveBehind(t)
	ts.createAPIService(t, wardleAPIService("v1alpha1.wardle.example.com", "wardle.example.com", backend.caPEM))
	ts.waitAvailable(t, "v1alpha1.wardle.example.com", apiregistrationv1.ConditionTrue, "Passed")

	req, _ := http.NewRequest(http.MethodGet, ts.url+"/apis/wardle.example.com/v1alpha1/namespaces/default/flunders", nil)
	req.Header.Set("X-Remote-User", "mallory")
	req.Header.Add("X-Remote-Group", "spoofed")
	req.Header.Set("X-Remote-Extra-Scopes", "everything")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET flunders = %d, want 200", resp.StatusCode)
	}
	backend.mu.Lock()
	defer backend.mu.Unlock()
	if backend.peer != pki.FrontProxyClientName {
		t.Errorf("service saw client certificate %q, want %q", backend.peer, pki.FrontProxyClientName)
	}
	// The test server's requests are system:admin's (no authenticator).
	got := http.Header{}
	for _, h := range []string{"X-Remote-User", "X-Remote-Group", "X-Remote-Extra-Scopes"} {
		if vs := backend.seen.Values(h); len(vs) > 0 {
			got[h] = vs
		}
	}
	want := http.Header{
		"X-Remote-User":  {"system:admin"},
		"X-Remote-Group": {"system:masters"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers the service saw (-want +got):\n%s", diff)
	}
}

// An aggregated server refuses a discovery request that names no user
// (the front-proxy certificate alone authenticates no one), so the
// availability check names one, as kube-aggregator's does.
func TestAPIServiceCheckNamesAggregator(t *testing.T) {
	ts := newTestServer(t)
	backend := newWardleBackend(t)
	ts.cfg.PodStreams = &tunnelTo{addr: backend.Listener.Addr().String()}
	ts.serveBehind(t)
	ts.createAPIService(t, wardleAPIService("v1alpha1.wardle.example.com", "wardle.example.com", backend.caPEM))
	ts.waitAvailable(t, "v1alpha1.wardle.example.com", apiregistrationv1.ConditionTrue, "Passed")

	backend.mu.Lock()
	defer backend.mu.Unlock()
	got := http.Header{}
	for _, h := range []string{"X-Remote-User", "X-Remote-Group"} {
		if vs := backend.discoverySeen.Values(h); len(vs) > 0 {
			got[h] = vs
		}
	}
	want := http.Header{
		"X-Remote-User":  {"system:kube-aggregator"},
		"X-Remote-Group": {"system:masters"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers of the availability check (-want +got):\n%s", diff)
	}
}
