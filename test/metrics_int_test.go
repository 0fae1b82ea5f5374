//go:build integration

package test

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIntegrationMetricsAndVersion checks /metrics (admin only) and the
// version endpoints kubectl relies on.
func TestIntegrationMetricsAndVersion(t *testing.T) {
	s := startServer(t)
	s.mustMinik(podManifest, "apply", "-f", "-")
	token, err := os.ReadFile(filepath.Join(s.dataDir, "tls", "admin.token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(path, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", s.url()+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	if code, _ := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials = %d, want 401", code)
	}
	if code, _ := get("/api/v1/pods", "not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("wrong bearer token = %d, want 401", code)
	}
	code, body := get("/metrics", strings.TrimSpace(string(token)))
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, name := range []string{
		`apiserver_request_total{code="201",resource="pods",verb="create"}`,
		"apiserver_request_duration_seconds_bucket",
		"apiserver_registered_watchers",
		"minik_store_commit_duration_seconds_bucket",
		"minik_store_commit_group_size_bucket",
		"minik_store_watchers",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			t.Logf("server RSS after one apply: %.1f MiB", f/(1<<20))
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/version"} {
		if code, _ := get(p, ""); code != http.StatusOK {
			t.Errorf("%s without credentials = %d, want 200", p, code)
		}
	}
	out := s.mustMinik("", "kubectl", "version")
	if !strings.Contains(out, "Server Version: v1.37") {
		t.Errorf("kubectl version:\n%s\nwant a v1.37 server version", out)
	}
}
