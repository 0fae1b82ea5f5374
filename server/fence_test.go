package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Once a term's context ends, its control loops' requests never reach the
// API: a stopped leader cannot write beside its successor.
func TestFencedStopsRequestsWhenLeadershipEnds(t *testing.T) {
	var seen atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default"}}`))
	}))
	defer api.Close()
	term, stop := context.WithCancel(context.Background())
	client := kubernetes.NewForConfigOrDie(fenced(term, &rest.Config{Host: api.URL}))

	if _, err := client.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("while leading: %v", err)
	}
	stop()
	_, err := client.CoreV1().Namespaces().Create(context.Background(), nil, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "no longer leads") {
		t.Errorf("after the term ended: err = %v, want a refusal saying the server no longer leads", err)
	}
	if n := seen.Load(); n != 1 {
		t.Errorf("the API saw %d requests, want 1 (none after the term ended)", n)
	}
}

// In-process bindings are fenced too: once the term ends, the scheduler's
// bindings fail before they reach the API.
func TestFencedBindRefusesWhenLeadershipEnds(t *testing.T) {
	term, stop := context.WithCancel(context.Background())
	stop()
	// No API at all: a binding that got past the fence would panic.
	bind := fencedBind(term, nil)
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}, Target: corev1.ObjectReference{Name: "n1"}}
	err := bind(context.Background(), b)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "default/p") {
		t.Errorf("binding after the term ended: err = %v, want a refusal naming the pod and saying the server no longer leads", err)
	}
}
