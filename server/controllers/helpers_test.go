package controllers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/store/storetest"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 8 * time.Second

// env is a real API server on a bbolt store, with a loopback client and an
// informer factory on it.
type env struct {
	t       *testing.T
	ctx     context.Context
	cfg     *rest.Config
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	lg      *slog.Logger
	runs    []func(ctx context.Context)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := apiserver.New(apiserver.Config{Store: storetest.New(t), Logger: lg, ServiceCIDR: "10.43.0.0/24"})
	if err != nil {
		t.Fatalf("apiserver.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := s.EnsureNamespaces(ctx); err != nil {
		t.Fatalf("EnsureNamespaces: %v", err)
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg := s.ServeLoopback(ctx)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &env{t: t, ctx: ctx, cfg: cfg, client: client, lg: lg, factory: informers.NewSharedInformerFactory(client, 0)}
}

// useLaggingInformers makes e's informer factory receive every watch
// event late by delay, like an informer behind a slow network.
func (e *env) useLaggingInformers(delay time.Duration) {
	cfg := rest.CopyConfig(e.cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return slowWatches{rt, delay} }
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		e.t.Fatalf("client: %v", err)
	}
	e.factory = informers.NewSharedInformerFactory(client, 0)
}

// countingClient returns a client that counts its requests by method
// and resource path.
func (e *env) countingClient() (kubernetes.Interface, *requestCounter) {
	cfg := rest.CopyConfig(e.cfg)
	rc := &requestCounter{n: map[string]int{}}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { rc.rt = rt; return rc }
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		e.t.Fatalf("client: %v", err)
	}
	return client, rc
}

type requestCounter struct {
	rt http.RoundTripper
	mu sync.Mutex
	n  map[string]int // "PUT /api/v1/namespaces/default/endpoints/web" → count
}

func (c *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.Method+" "+req.URL.Path]++
	c.mu.Unlock()
	return c.rt.RoundTrip(req)
}

func (c *requestCounter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

type slowWatches struct {
	rt    http.RoundTripper
	delay time.Duration
}

func (s slowWatches) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(req)
	if err != nil || req.URL.Query().Get("watch") == "" {
		return resp, err
	}
	resp.Body = slowBody{resp.Body, s.delay}
	return resp, nil
}

type slowBody struct {
	io.ReadCloser
	delay time.Duration
}

func (b slowBody) Read(p []byte) (int, error) {
	time.Sleep(b.delay)
	return b.ReadCloser.Read(p)
}

// run starts the informers and the given Run funcs; they stop when the
// test ends, and the test waits for them to return.
func (e *env) run(runs ...func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(e.ctx)
	e.factory.Start(ctx.Done())
	done := make(chan error, len(runs))
	for _, r := range runs {
		go func() { done <- r(ctx) }()
	}
	e.t.Cleanup(func() {
		cancel()
		for range runs {
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run = %v", err)
				}
			case <-time.After(waitTimeout):
				e.t.Errorf("Run did not return after its context ended")
			}
		}
		e.factory.Shutdown()
	})
}

// eventually polls cond until it returns nil or waitTimeout passes.
func (e *env) eventually(what string, cond func() error) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testPodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", Image: "busybox",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
	}}}
}

func (e *env) createPod(name string, lbls map[string]string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	e.t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: lbls}, Spec: testPodSpec()}
	for _, m := range mutate {
		m(pod)
	}
	out, err := e.client.CoreV1().Pods("default").Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod %q: %v", name, err)
	}
	return out
}

// setPodStatus writes pod's status: phase, IP and Ready condition.
func (e *env) setPodStatus(name string, phase corev1.PodPhase, ip string, ready bool, restarts int32) {
	e.t.Helper()
	pods := e.client.CoreV1().Pods("default")
	pod, err := pods.Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get pod %q: %v", name, err)
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	pod.Status.Phase = phase
	pod.Status.PodIP = ip
	if ip != "" {
		pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "busybox", Ready: ready, RestartCount: restarts}}
	if _, err := pods.UpdateStatus(e.ctx, pod, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update status of pod %q: %v", name, err)
	}
}

func ptr[T any](v T) *T { return &v }
