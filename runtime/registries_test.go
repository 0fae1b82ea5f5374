package runtime

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestParseRegistries(t *testing.T) {
	data := `
mirrors:
  registry.k8s.io:
    endpoint: ["http://10.250.0.1:5000", "https://mirror.example:5443"]
  "*":
    endpoint: ["http://10.250.0.1:5000"]
configs:
  "mirror.example:5443":
    tls: {insecure_skip_verify: true}
    auth: {username: u, password: p}
`
	got, err := ParseRegistries([]byte(data))
	if err != nil {
		t.Fatalf("ParseRegistries = %v", err)
	}
	want := Registries{
		Mirrors: map[string]Mirror{
			"registry.k8s.io": {Endpoints: []string{"http://10.250.0.1:5000", "https://mirror.example:5443"}},
			"*":               {Endpoints: []string{"http://10.250.0.1:5000"}},
		},
		Configs: map[string]RegistryConfig{
			"mirror.example:5443": {TLS: &RegistryTLS{InsecureSkipVerify: true}, Auth: &RegistryLogin{Username: "u", Password: "p"}},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Registries{})); diff != "" {
		t.Errorf("ParseRegistries (-want +got):\n%s", diff)
	}
	if got.clients["mirror.example:5443"] == nil {
		t.Errorf("no HTTP client for mirror.example:5443's tls entry")
	}
	if empty, err := ParseRegistries(nil); err != nil || len(empty.Mirrors) != 0 {
		t.Errorf("ParseRegistries(empty) = %+v, %v; want no mirrors", empty, err)
	}
}

func TestParseRegistriesErrors(t *testing.T) {
	tests := []struct {
		name, data, key string
	}{
		{"unknown top key", "mirror:\n  a: {}\n", "mirror"},
		{"unknown mirror key", "mirrors:\n  a:\n    endpoints: [http://x]\n", "endpoints"},
		{"unknown tls key", "configs:\n  a:\n    tls: {insecure: true}\n", "insecure"},
		{"bad scheme", "mirrors:\n  registry.k8s.io:\n    endpoint: [\"ftp://x:21\"]\n", `mirrors["registry.k8s.io"].endpoint[0]`},
		{"no host", "mirrors:\n  a:\n    endpoint: [\"10.0.0.1:5000\"]\n", `mirrors["a"].endpoint[0]`},
		{"missing ca file", "configs:\n  b:\n    tls: {ca_file: /nonexistent/ca.crt}\n", `configs["b"].tls`},
		{"not yaml", "mirrors: [\n", "registries.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), RegistriesFile)
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadRegistries(path)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("LoadRegistries = %v, want ErrInvalid", err)
			}
			// The message must lead the reader to the file and the key.
			for _, s := range []string{path, tc.key} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("LoadRegistries = %q, want it to name %q", err, s)
				}
			}
		})
	}
	if _, err := LoadRegistries(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadRegistries(missing) = %v, want os.ErrNotExist", err)
	}
}

// countingRegistry is an in-process registry on 127.0.0.1 that counts
// the requests it answers.
type countingRegistry struct {
	host string
	mu   sync.Mutex
	n    int
}

func newCountingRegistry(t *testing.T) *countingRegistry {
	r := &countingRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.n++
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *countingRegistry) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// push stores a random image as repoTag and returns its digest.
func (r *countingRegistry) push(t *testing.T, repoTag string) string {
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// closedEndpoint is an http URL where nothing listens.
func closedEndpoint(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

func TestRegistriesResolveThroughMirror(t *testing.T) {
	mirror := newCountingRegistry(t)
	digest := mirror.push(t, "x:1")
	upstream := newCountingRegistry(t)
	upDigest := upstream.push(t, "only/upstream:1")
	dead := closedEndpoint(t)

	tests := []struct {
		name      string
		endpoints map[string][]string
		ref       string
		want      string
		mirrorHit bool
	}{
		{"mirror of the named registry", map[string][]string{"unreachable.invalid": {"http://" + mirror.host}}, "unreachable.invalid/x:1", digest, true},
		{"wildcard mirror", map[string][]string{"*": {"http://" + mirror.host}}, "unreachable.invalid/x:1", digest, true},
		{"next endpoint after a dead one", map[string][]string{"unreachable.invalid": {dead, "http://" + mirror.host + "/v2"}}, "unreachable.invalid/x:1", digest, true},
		{"registry itself after the mirrors", map[string][]string{"*": {dead, "http://" + mirror.host}}, upstream.host + "/only/upstream:1", upDigest, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Registries
			r.Mirrors = map[string]Mirror{}
			for reg, eps := range tc.endpoints {
				r.Mirrors[reg] = Mirror{Endpoints: eps}
			}
			before := mirror.requests()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resolver := docker.NewResolver(docker.ResolverOptions{Hosts: r.hosts(nil)})
			_, desc, err := resolver.Resolve(ctx, tc.ref)
			if err != nil {
				t.Fatalf("Resolve(%q) = %v", tc.ref, err)
			}
			if got := desc.Digest.String(); got != tc.want {
				t.Errorf("Resolve(%q) digest = %s, want %s", tc.ref, got, tc.want)
			}
			if hit := mirror.requests() > before; hit != tc.mirrorHit {
				t.Errorf("mirror asked = %v, want %v", hit, tc.mirrorHit)
			}
		})
	}
	var none Registries
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: none.hosts(nil)})
	if _, _, err := resolver.Resolve(ctx, "unreachable.invalid/x:1"); err == nil {
		t.Errorf("Resolve without mirrors succeeded, want an error from unreachable.invalid")
	}
}
