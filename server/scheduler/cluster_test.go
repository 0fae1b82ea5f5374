package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/store/storetest"
)

// testCluster is an API server over a real store, reached through the
// loopback client, with a scheduler against it.
type testCluster struct {
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	sched   *Scheduler
	start   func() // runs the scheduler; once
}

// newTestCluster starts an API server and a scheduler with opts; both stop
// when the test ends.
func newTestCluster(tb testing.TB, opts Options) *testCluster {
	c := newIdleCluster(tb, opts)
	c.start()
	return c
}

// newIdleCluster starts an API server and makes a scheduler that runs once
// c.start is called. Both stop when the test ends.
func newIdleCluster(tb testing.TB, opts Options) *testCluster {
	tb.Helper()
	lg := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := apiserver.New(apiserver.Config{Store: storetest.New(tb), Logger: lg})
	if err != nil {
		tb.Fatalf("apiserver.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.EnsureNamespaces(ctx); err != nil {
		tb.Fatalf("EnsureNamespaces: %v", err)
	}
	srvDone := make(chan struct{})
	go func() { srv.Run(ctx); close(srvDone) }()
	client := kubernetes.NewForConfigOrDie(srv.ServeLoopback(ctx))
	factory := informers.NewSharedInformerFactory(client, 0)
	s, err := New(client, factory, lg, opts)
	if err != nil {
		tb.Fatalf("scheduler.New: %v", err)
	}
	schedDone := make(chan error, 1)
	var once sync.Once
	start := func() { once.Do(func() { go func() { schedDone <- s.Run(ctx) }() }) }
	tb.Cleanup(func() {
		once.Do(func() { schedDone <- nil })
		cancel()
		for _, ch := range []<-chan struct{}{waitErr(tb, schedDone), srvDone} {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				tb.Errorf("components did not stop within 10s")
			}
		}
		factory.Shutdown()
	})
	return &testCluster{client: client, factory: factory, sched: s, start: start}
}

func waitErr(tb testing.TB, errc <-chan error) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		if err := <-errc; err != nil {
			tb.Errorf("Run: %v", err)
		}
		close(done)
	}()
	return done
}

func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func (c *testCluster) createNode(tb testing.TB, ctx context.Context, n *corev1.Node) {
	tb.Helper()
	if _, err := c.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("create node %s: %v", n.Name, err)
	}
}

func (c *testCluster) createPod(tb testing.TB, ctx context.Context, p *corev1.Pod) {
	tb.Helper()
	p = p.DeepCopy()
	p.UID = ""
	if _, err := c.client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("create pod %s: %v", p.Name, err)
	}
}

// waitPod polls a pod until cond holds, failing the test after 20 s.
func (c *testCluster) waitPod(t *testing.T, ctx context.Context, name string, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var pod *corev1.Pod
	for time.Now().Before(deadline) {
		var err error
		if pod, err = c.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err == nil && cond(pod) {
			return pod
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pod %s not %s within 20s: spec.nodeName %q, conditions %+v", name, what, pod.Spec.NodeName, pod.Status.Conditions)
	return nil
}

func bound(p *corev1.Pod) bool { return p.Spec.NodeName != "" }

func unschedulableWith(msg string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return hasUnschedulable(p, msg, "") }
}

// waitEvent polls for an event about a pod with the given reason and
// message, failing the test after 20 s.
func (c *testCluster) waitEvent(t *testing.T, ctx context.Context, pod, reason, msg string) {
	t.Helper()
	sel := fields.Set{"involvedObject.name": pod, "reason": reason}.AsSelector().String()
	deadline := time.Now().Add(20 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		list, err := c.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: sel})
		seen = seen[:0]
		if err == nil {
			for _, ev := range list.Items {
				if ev.InvolvedObject.Name == pod && ev.Reason == reason && ev.Message == msg && ev.Source.Component == Name {
					return
				}
				seen = append(seen, fmt.Sprintf("%s %s: %s", ev.InvolvedObject.Name, ev.Reason, ev.Message))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event %q for pod %s within 20s; seen %q", reason, msg, pod, seen)
}
