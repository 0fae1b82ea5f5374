//go:build integration

package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// certLifetime is the leaf lifetime of the rotation test: every leaf is
// renewed about every 35 s (two thirds of 60 s plus 15 s backdating).
const certLifetime = time.Minute

// TestIntegrationCertRotation runs a server, an agent and a client-go
// watch for three certificate lifetimes without a restart: the serving,
// admin and node certificates are renewed several times, the watch never
// sees an error and misses no event, the node stays Ready, and a rotated
// join token is accepted while the old one is refused.
func TestIntegrationCertRotation(t *testing.T) {
	t.Setenv("MINIK_CERT_LIFETIME", certLifetime.String())
	s, ip := startClusterServer(t)
	a := startAgent(t, s, ip, 9)
	cs := adminClient(t, s)
	waitNodeReady(t, cs, a.name)
	serverPID, agentPID := s.cmd.Process.Pid, a.cmd.Process.Pid

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cmWatch{s: s}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(ctx, t, cs) }()

	serving, admin, node := serials{}, serials{}, serials{}
	oldToken := readTrimmed(t, filepath.Join(s.dataDir, "token"))
	var newToken string
	created := 0
	end := time.Now().Add(3*certLifetime + 20*time.Second)
	for i := 0; time.Now().Before(end); i++ {
		// A client made from the kubeconfig as it is now: the file
		// carries a valid admin certificate at every moment.
		fresh := adminClient(t, s)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tick-%d", i), Labels: map[string]string{"test": "rotation"}}}
		if _, err := fresh.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s with the current kubeconfig at %v: %v", cm.Name, time.Now().Format(time.TimeOnly), err)
		}
		created++
		checkReady(t, fresh, a.name)
		serving.add(servedCert(t, s))
		admin.add(kubeconfigCert(t, s.kubeconfig()))
		node.add(fileCert(t, filepath.Join(a.dataDir, "tls", "node.crt")))
		if i == 6 {
			newToken = rotateToken(t, s)
		}
		if newToken != "" {
			checkTokens(t, s, oldToken, newToken)
		}
		time.Sleep(5 * time.Second)
	}
	for _, p := range []struct {
		what string
		cmd  *exec.Cmd
		pid  int
	}{{"server", s.cmd, serverPID}, {"agent", a.cmd, agentPID}} {
		if p.cmd == nil || p.cmd.Process.Pid != p.pid || p.cmd.ProcessState != nil {
			t.Errorf("the %s was restarted or exited", p.what)
		}
	}
	// Three lifetimes of a leaf renewed every ~35 s: at least four of
	// each were in use.
	for _, c := range []struct {
		what string
		s    serials
	}{{"serving", serving}, {"admin", admin}, {"node", node}} {
		t.Logf("%s certificates seen: %d", c.what, len(c.s))
		if len(c.s) < 4 {
			t.Errorf("%d %s certificates in %v, want at least 4", len(c.s), c.what, 3*certLifetime)
		}
	}

	// Every configmap created reached the watch, and it saw no error.
	eventually(t, 15*time.Second, "the watch sees every configmap", func() error {
		if got := w.count(); got < created {
			return fmt.Errorf("%d of %d configmaps seen", got, created)
		}
		return nil
	})
	cancel()
	wg.Wait()
	if errs := w.errors(); len(errs) > 0 {
		t.Errorf("watch errors: %v", errs)
	}
	t.Logf("the watch was established %d time(s)", w.starts)

	out := run(t, s.bin, "certificate", "check", "--data-dir", s.dataDir)
	for _, name := range []string{"serving", "admin"} {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("certificate check lists no %s:\n%s", name, out)
		}
	}
	before := servedCert(t, s)
	run(t, s.bin, "certificate", "rotate", "--data-dir", s.dataDir)
	eventually(t, 30*time.Second, "the server serves the rotated certificate", func() error {
		if servedCert(t, s).Equal(before) {
			return fmt.Errorf("still the certificate from before the rotation")
		}
		return nil
	})
	checkReady(t, adminClient(t, s), a.name)
}

// adminClient is a clientset from the server's admin kubeconfig as it is
// now.
func adminClient(t *testing.T, s *serverProc) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// cmWatch follows the test's configmaps with client-go, resuming from
// the last resourceVersion (with a client from the current kubeconfig)
// when the server ends the watch. Every ERROR event or failure to
// (re)start the watch is kept.
type cmWatch struct {
	s      *serverProc
	mu     sync.Mutex
	seen   map[string]bool
	errs   []string
	starts int
}

func (w *cmWatch) run(ctx context.Context, t *testing.T, cs *kubernetes.Clientset) {
	w.mu.Lock()
	w.seen = map[string]bool{}
	w.mu.Unlock()
	rv := ""
	for ctx.Err() == nil {
		wi, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{LabelSelector: "test=rotation", ResourceVersion: rv})
		if err != nil {
			if ctx.Err() == nil {
				w.fail(fmt.Sprintf("starting the watch at rv %s: %v", rv, err))
				time.Sleep(time.Second)
			}
			continue
		}
		w.mu.Lock()
		w.starts++
		w.mu.Unlock()
		for ev := range wi.ResultChan() {
			if ev.Type == watch.Error {
				// The test's own cancel at the end ends the stream
				// with an error event; any other is a failure.
				if ctx.Err() == nil {
					w.fail(fmt.Sprintf("ERROR event: %v", ev.Object))
				}
				continue
			}
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok {
				rv = cm.ResourceVersion
				w.mu.Lock()
				w.seen[cm.Name] = true
				w.mu.Unlock()
			}
		}
		wi.Stop()
		cs = adminClient(t, w.s)
	}
}

func (w *cmWatch) fail(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, time.Now().Format(time.TimeOnly)+" "+msg)
}

func (w *cmWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

func (w *cmWatch) errors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errs...)
}

// serials is a set of certificate serial numbers.
type serials map[string]bool

func (s serials) add(c *x509.Certificate) { s[c.SerialNumber.String()] = true }

// checkReady fails the test unless node is Ready now.
func checkReady(t *testing.T, cs *kubernetes.Clientset, node string) {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node %s: %v", node, err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return
		}
	}
	t.Fatalf("node %s not Ready at %v: %v", node, time.Now().Format(time.TimeOnly), n.Status.Conditions)
}

// servedCert is the certificate the server presents to a new connection,
// verified against the cluster CA.
func servedCert(t *testing.T, s *serverProc) *x509.Certificate {
	t.Helper()
	roots := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(s.dataDir, "tls", "ca.crt"))
	if err != nil || !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("cluster CA: %v", err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.url(), "https://"), &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake with the server at %v: %v", time.Now().Format(time.TimeOnly), err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// kubeconfigCert is the admin client certificate in the kubeconfig.
func kubeconfigCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.AuthInfos {
		return parseCert(t, u.ClientCertificateData)
	}
	t.Fatalf("%s has no user", path)
	return nil
}

func fileCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCert(t, data)
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("no PEM block in a certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing a certificate: %v", err)
	}
	return cert
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// rotateToken runs `minik token rotate` and returns the new token.
func rotateToken(t *testing.T, s *serverProc) string {
	t.Helper()
	tok := strings.TrimSpace(run(t, s.bin, "token", "rotate", "--data-dir", s.dataDir))
	if tok != readTrimmed(t, filepath.Join(s.dataDir, "token")) {
		t.Fatalf("token rotate printed %q, not the token file's content", tok)
	}
	return tok
}

// checkTokens checks, once the server has had time to pick the rotation
// up, that the new join token authenticates and the old one no longer
// does.
func checkTokens(t *testing.T, s *serverProc, oldToken, newToken string) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(s.dataDir, "tls", "ca.crt"))))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	status := func(tok string) int {
		req, _ := http.NewRequest("GET", s.url()+"/api", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET /api: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 20*time.Second, "the rotated join token in force", func() error {
		if got := status(oldToken); got != http.StatusUnauthorized {
			return fmt.Errorf("old token: %d, want 401", got)
		}
		if got := status(newToken); got != http.StatusOK {
			return fmt.Errorf("new token: %d, want 200", got)
		}
		return nil
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
