package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	utilexec "k8s.io/utils/exec"
)

// isolate keeps kubectl's caches and preferences out of the real home and
// clears kubeconfig variables.
func isolate(t *testing.T) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	t.Setenv("MINIK_KUBECONFIG", "")
}

// runArgs runs the kubectl tree under the name "minik" with args.
func runArgs(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	err = run(t.Context(), streams, "minik", args)
	return out.String(), errOut.String(), err
}

func exitCode(err error) int {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestRunPassThrough(t *testing.T) {
	isolate(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // substring of stdout
		wantMsg  string // substring of the returned error
	}{
		{"get help", []string{"get", "--help"}, 0, "minik get [(-o|--output=)", ""},
		{"apply help", []string{"apply", "-h"}, 0, "Apply a configuration to a resource", ""},
		{"exec help", []string{"exec", "--help"}, 0, "Execute a command in a container", ""},
		{"unknown flag", []string{"get", "--no-such-flag"}, 1, "", "unknown flag: --no-such-flag"},
		{"unknown command", []string{"frobnicate"}, 1, "", `unknown command "frobnicate"`},
		{"missing args", []string{"scale", "--replicas", "2"}, 1, "", "You must provide one or more resources"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runArgs(t, tc.args...)
			if got := exitCode(err); got != tc.wantCode {
				t.Fatalf("run(%q) exit code = %d (err %v), want %d", tc.args, got, err, tc.wantCode)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tc.args, out, tc.wantOut)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("run(%q) error = %q, want it to contain %q", tc.args, err, tc.wantMsg)
			}
		})
	}
}

func TestExecuteFatal(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	tests := []struct {
		name     string
		fn       func()
		wantCode int
		wantMsg  string
	}{
		{"success", func() {}, 0, ""},
		{"remote exit status", func() {
			cmdutil.CheckErr(utilexec.CodeExitError{Err: errors.New("command terminated with exit code 7"), Code: 7})
			panic("CheckErr returned")
		}, 7, "command terminated with exit code 7"},
		{"plain error", func() {
			cmdutil.CheckErr(errors.New("boom"))
			panic("CheckErr returned")
		}, 1, "error: boom"},
		{"silent exit", func() { cmdutil.CheckErr(cmdutil.ErrExit) }, 1, ""},
		{"diff exit", func() { cmdutil.CheckDiffErr(errors.New("differs")) }, 2, "error: differs"},
		{"helper goroutine", func() {
			go cmdutil.CheckErr(utilexec.CodeExitError{Err: errors.New("tar failed"), Code: 3})
			<-block // blocked, as on a pipe whose writer died
		}, 3, "tar failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := execute(t.Context(), tc.fn)
			if got := exitCode(err); got != tc.wantCode {
				t.Fatalf("execute() exit code = %d (err %v), want %d", got, err, tc.wantCode)
			}
			if err != nil && err.Error() != tc.wantMsg {
				t.Errorf("execute() message = %q, want %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

func TestExecuteContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errc := make(chan error, 1)
	block := make(chan struct{})
	defer close(block)
	go func() { errc <- execute(ctx, func() { <-block }) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("execute() = %v, want %v", err, context.Canceled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("execute() did not return after its context ended")
	}
}

// apiServer is a minimal API server: discovery for core/v1 pods and one
// pod "a" in "default". It records each request's path.
type apiServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
}

func newAPIServer(t *testing.T) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api":
		fmt.Fprint(w, `{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}`)
	case "/apis":
		fmt.Fprint(w, `{"kind":"APIGroupList","apiVersion":"v1","groups":[]}`)
	case "/api/v1":
		fmt.Fprint(w, `{"kind":"APIResourceList","groupVersion":"v1","resources":[`+
			`{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list","watch","create","delete"],"shortNames":["po"]}]}`)
	case "/api/v1/namespaces/default/pods":
		fmt.Fprint(w, `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[`+
			`{"metadata":{"name":"a","namespace":"default","resourceVersion":"5"}}]}`)
	case "/api/v1/namespaces/secret/pods":
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,`+
			`"message":"pods is forbidden: User \"u\" cannot list resource \"pods\" in the namespace \"secret\""}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"}`)
	}
}

func (s *apiServer) requested(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.requests {
		if strings.HasSuffix(r, " "+path) {
			return true
		}
	}
	return false
}

// setStdin points os.Stdin at a file holding data until the test ends.
func setStdin(t *testing.T, data string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = f
	t.Cleanup(func() {
		os.Stdin = old
		f.Close()
	})
}

// writeKubeconfig writes a kubeconfig for server to a temporary file.
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
users:
- name: u
  user:
    token: t
contexts:
- name: ctx
  context:
    cluster: c
    user: u
current-context: ctx
`, server)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunAgainstServer(t *testing.T) {
	isolate(t)
	srv := newAPIServer(t)
	t.Setenv("KUBECONFIG", writeKubeconfig(t, srv.URL))

	out, _, err := runArgs(t, "get", "pods", "-o", "name")
	if err != nil || out != "pod/a\n" {
		t.Errorf(`run(get pods -o name) = %q, %v, want "pod/a\n", nil`, out, err)
	}

	// kubectl reads "-f -" from os.Stdin itself, not from the streams.
	setStdin(t, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
	out, _, err = runArgs(t, "create", "-f", "-", "--dry-run=client", "--validate=false", "-o", "name")
	if err != nil || out != "pod/b\n" {
		t.Errorf(`run(create -f - --dry-run=client) = %q, %v, want "pod/b\n", nil`, out, err)
	}

	_, _, err = runArgs(t, "get", "po", "-n", "secret")
	want := `Error from server (Forbidden): pods is forbidden: User "u" cannot list resource "pods" in the namespace "secret"`
	if exitCode(err) != 1 || err.Error() != want {
		t.Errorf("run(get po -n secret) = %v (exit %d), want %q (exit 1)", err, exitCode(err), want)
	}

	_, _, err = runArgs(t, "get", "pods", "-o", "bogus")
	want = `unable to match a printer suitable for the output format "bogus"`
	if exitCode(err) != 1 || !strings.Contains(err.Error(), want) {
		t.Errorf("run(get pods -o bogus) = %v (exit %d), want %q (exit 1)", err, exitCode(err), want)
	}

	_, _, err = runArgs(t, "get", "widgets")
	want = `the server doesn't have a resource type "widgets"`
	if exitCode(err) != 1 || !strings.Contains(err.Error(), want) {
		t.Errorf("run(get widgets) = %v (exit %d), want %q (exit 1)", err, exitCode(err), want)
	}
}

func TestRunKubeconfigOrder(t *testing.T) {
	isolate(t)
	flagSrv, envSrv, minikSrv := newAPIServer(t), newAPIServer(t), newAPIServer(t)
	flagCfg := writeKubeconfig(t, flagSrv.URL)
	envCfg := writeKubeconfig(t, envSrv.URL)
	minikCfg := writeKubeconfig(t, minikSrv.URL)

	tests := []struct {
		name       string
		kubeconfig string
		minik      string
		flag       bool
		want       *apiServer
	}{
		{"flag wins", envCfg, minikCfg, true, flagSrv},
		{"KUBECONFIG next", envCfg, minikCfg, false, envSrv},
		{"MINIK_KUBECONFIG last", "", minikCfg, false, minikSrv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.kubeconfig)
			t.Setenv("MINIK_KUBECONFIG", tc.minik)
			args := []string{"config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"}
			if tc.flag {
				args = append(args, "--kubeconfig", flagCfg)
			}
			out, _, err := runArgs(t, args...)
			if err != nil || out != tc.want.URL {
				t.Errorf("run(%q) = %q, %v, want %q, nil", args, out, err, tc.want.URL)
			}

			args = []string{"get", "pods", "-o", "name"}
			if tc.flag {
				args = append(args, "--kubeconfig="+flagCfg)
			}
			if _, _, err := runArgs(t, args...); err != nil {
				t.Fatalf("run(%q) = %v", args, err)
			}
			if !tc.want.requested("/api/v1/namespaces/default/pods") {
				t.Errorf("run(%q) did not list pods on %s", args, tc.want.URL)
			}
			if got := os.Getenv("KUBECONFIG"); got != tc.kubeconfig {
				t.Errorf("KUBECONFIG after run = %q, want %q", got, tc.kubeconfig)
			}
		})
	}
}

func TestServerVersion(t *testing.T) {
	isolate(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2-minik"}`)
	}))
	t.Cleanup(srv.Close)

	got, err := ServerVersion(writeKubeconfig(t, srv.URL))
	if err != nil || got != "v1.37.2-minik" {
		t.Errorf("ServerVersion() = %q, %v, want %q, nil", got, err, "v1.37.2-minik")
	}
	t.Setenv("MINIK_KUBECONFIG", writeKubeconfig(t, srv.URL))
	if got, err := ServerVersion(""); err != nil || got != "v1.37.2-minik" {
		t.Errorf(`ServerVersion("") = %q, %v, want %q, nil`, got, err, "v1.37.2-minik")
	}
}
