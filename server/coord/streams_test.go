package coord

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/internal/testnet"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/pki/pkitest"
)

// localOnlyStreams answers for the nodes connected here.
type localOnlyStreams struct{ connected map[string]bool }

func (l localOnlyStreams) Connected(node string) bool { return l.connected[node] }

// errLocalDial is the error of localOnlyStreams' DialPod.
var errLocalDial = errors.New("local dial")

func (l localOnlyStreams) DialPod(context.Context, *corev1.Pod, int) (net.Conn, error) {
	return nil, errLocalDial
}

func (l localOnlyStreams) ServePodSubresource(w http.ResponseWriter, _ *http.Request, pod *corev1.Pod, sub string) {
	io.WriteString(w, "local "+sub+" of "+pod.Name)
}

type holderMap map[string]string

func (h holderMap) Holder(node string) (string, bool) {
	s, ok := h[node]
	return s, ok
}

func TestPodStreamRouter(t *testing.T) {
	a, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		io.WriteString(w, "remote")
	}))
	pkitest.StartTLS(other, a.ServerTLSConfig())
	defer other.Close()
	holder := strings.TrimPrefix(other.URL, "https://")
	router := NewPodStreamRouter(localOnlyStreams{connected: map[string]bool{"here": true}},
		holderMap{"there": holder, "mine": "10.0.0.1:6443"}, "10.0.0.1:6443", a, testLogger(t))

	tests := []struct {
		name, node, forwardedBy string
		want                    string
	}{
		{"node connected here", "here", "", "local log of p"},
		{"node connected to another server", "there", "", "remote"},
		{"request already forwarded", "there", "10.0.0.9:6443", "local log of p"},
		{"node this server holds per the records", "mine", "", "local log of p"},
		{"node no server holds", "nowhere", "", "local log of p"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			req := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/p/log?follow=true", nil)
			req.Header.Set("Authorization", "Bearer the-callers-token")
			if tc.forwardedBy != "" {
				req.Header.Set(forwardedHeader, tc.forwardedBy)
			}
			rec := httptest.NewRecorder()
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: tc.node}}
			router.ServePodSubresource(rec, req, pod, "log")
			if body := rec.Body.String(); body != tc.want {
				t.Fatalf("body = %q, want %q", body, tc.want)
			}
			if tc.want != "remote" {
				return
			}
			if got.URL.Path != "/api/v1/namespaces/default/pods/p/log" || got.URL.Query().Get("follow") != "true" {
				t.Errorf("forwarded to %s, want the same path and query", got.URL)
			}
			if auth := got.Header.Get("Authorization"); auth != "Bearer "+a.AdminToken() {
				t.Errorf("forwarded Authorization = %q, want the admin token", auth)
			}
			if by := got.Header.Get(forwardedHeader); by != "10.0.0.1:6443" {
				t.Errorf("forwarded %s = %q, want this server", forwardedHeader, by)
			}
		})
	}

	// A holder that is gone: 503 naming it.
	other.Close()
	rec := httptest.NewRecorder()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "there"}}
	router.ServePodSubresource(rec, httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/p/log", nil), pod, "log")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), holder) {
		t.Errorf("holder gone: %d %s, want 503 naming %s", rec.Code, rec.Body.String(), holder)
	}
}

// A holder whose port accepts connections but never answers (a server
// that hung, or one gone while its record lasts) gets a 503, not a
// request that waits forever.
func TestPodStreamRouterSilentHolder(t *testing.T) {
	defer func(d time.Duration) { forwardConnectTimeout = d }(forwardConnectTimeout)
	forwardConnectTimeout = 100 * time.Millisecond
	a, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	ln := testnet.SilentListener(t)
	router := NewPodStreamRouter(localOnlyStreams{}, holderMap{"there": ln.Addr().String()}, "10.0.0.1:6443", a, testLogger(t))
	rec := httptest.NewRecorder()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "there"}}
	done := make(chan struct{})
	go func() {
		router.ServePodSubresource(rec, httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/p/log?follow=true", nil), pod, "log")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatalf("forwarding to a silent holder did not end within %v", testTimeout)
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("silent holder: %d %s, want 503", rec.Code, rec.Body.String())
	}
}

// TestPodStreamRouterDialPod checks that pods of nodes connected here are
// dialed here, and that those of nodes held by another server are not.
func TestPodStreamRouterDialPod(t *testing.T) {
	a, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	router := NewPodStreamRouter(localOnlyStreams{connected: map[string]bool{"here": true}},
		holderMap{"there": "10.0.0.2:6443"}, "10.0.0.1:6443", a, testLogger(t))
	for _, tc := range []struct {
		node      string
		wantLocal bool
	}{{"here", true}, {"unknown", true}, {"there", false}} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: tc.node}}
		_, err := router.DialPod(context.Background(), pod, 443)
		if got := errors.Is(err, errLocalDial); got != tc.wantLocal {
			t.Errorf("DialPod(node %q) = %v, want local %v", tc.node, err, tc.wantLocal)
		}
	}
}
