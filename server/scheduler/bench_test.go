package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minik-dev/minik/internal/procstatus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

const (
	benchNodes   = 1000
	benchPods    = 10000
	benchWriters = 64
)

var benchBinders, _ = strconv.Atoi(os.Getenv("BENCH_BINDERS"))

// BenchmarkSchedule creates 1,000 Ready nodes (32 cpu, 64Gi, 110 pods)
// and then 10,000 small pods through the API, and reports how fast pods go
// from creation to bound, and the process RSS at the end (API server,
// store, scheduler and the load generator together).
//
//	go test -run '^$' -bench Schedule -benchtime 1x ./server/scheduler
//
// BENCH_BINDERS sets Options.Binders.
func BenchmarkSchedule(b *testing.B) {
	for b.Loop() {
		c := newTestCluster(b, Options{Binders: benchBinders})
		ctx := testContext(b)
		createNodes(b, ctx, c)
		waitFor(b, "scheduler to see the nodes", func() bool {
			c.sched.cache.mu.Lock()
			defer c.sched.cache.mu.Unlock()
			return len(c.sched.cache.list) == benchNodes
		})
		allBound := countBound(b, c)
		start := time.Now()
		created := createPods(b, ctx, c)
		report(b, ctx, c, start, allBound, fmt.Sprintf("created in %v", created.Round(time.Millisecond)))
		b.ReportMetric(float64(benchPods)/created.Seconds(), "created/s")
	}
}

// BenchmarkScheduleBacklog is BenchmarkSchedule with every node and pod
// created before the scheduler starts: it measures the scheduler alone,
// from its start (including the initial list) to the last binding.
func BenchmarkScheduleBacklog(b *testing.B) {
	for b.Loop() {
		c := newIdleCluster(b, Options{Binders: benchBinders})
		ctx := testContext(b)
		createNodes(b, ctx, c)
		created := createPods(b, ctx, c)
		allBound := countBound(b, c)
		start := time.Now()
		c.start()
		report(b, ctx, c, start, allBound, fmt.Sprintf("created beforehand in %v", created.Round(time.Millisecond)))
	}
}

func createNodes(b *testing.B, ctx context.Context, c *testCluster) {
	parallel(b, benchNodes, func(i int) error {
		_, err := c.client.CoreV1().Nodes().Create(ctx, testNode(fmt.Sprintf("node-%04d", i), "32", "64Gi", 110), metav1.CreateOptions{})
		return err
	})
}

// createPods creates the pods from bodies encoded ahead of time, so that
// the load generator spends little CPU, and returns how long it took.
func createPods(b *testing.B, ctx context.Context, c *testCluster) time.Duration {
	bodies := podBodies(b)
	rc := c.client.CoreV1().RESTClient()
	start := time.Now()
	parallel(b, benchPods, func(i int) error {
		return rc.Post().Namespace("default").Resource("pods").
			SetHeader("Content-Type", "application/json").Body(bodies[i]).Do(ctx).Error()
	})
	return time.Since(start)
}

// countBound reports when every pod is bound, as the scheduler's own
// informer sees it, so that counting adds no watch to the load.
func countBound(b *testing.B, c *testCluster) <-chan time.Time {
	allBound := make(chan time.Time, 1)
	if _, err := c.factory.Core().V1().Pods().Informer().AddEventHandler(boundCounter(allBound)); err != nil {
		b.Fatalf("AddEventHandler: %v", err)
	}
	return allBound
}

func report(b *testing.B, ctx context.Context, c *testCluster, start time.Time, allBound <-chan time.Time, note string) {
	select {
	case end := <-allBound:
		d := end.Sub(start)
		rss, peak := procstatus.KiB(procstatus.Self, "VmRSS")/1024, procstatus.KiB(procstatus.Self, "VmHWM")/1024
		b.ReportMetric(float64(benchPods)/d.Seconds(), "pods/s")
		b.ReportMetric(float64(rss), "rss-MiB")
		b.ReportMetric(float64(peak), "peak-rss-MiB")
		b.Logf("%d pods on %d nodes (%s): all bound after %v, %.0f pods/s; RSS %d MiB, peak %d MiB",
			benchPods, benchNodes, note, d.Round(time.Millisecond), float64(benchPods)/d.Seconds(), rss, peak)
		if os.Getenv("BENCH_EVENTS") != "" {
			reportEvents(b, ctx, c, end)
		}
	case <-ctx.Done():
		b.Fatalf("not all %d pods bound before the timeout", benchPods)
	}
}

// reportEvents waits up to a minute for a Scheduled event per pod and
// reports how long after the last binding the last one was written.
func reportEvents(b *testing.B, ctx context.Context, c *testCluster, bound time.Time) {
	n := 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		evs, err := c.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=Scheduled"})
		if err != nil {
			b.Fatalf("listing events: %v", err)
		}
		if n = len(evs.Items); n >= benchPods {
			break
		}
	}
	lag := time.Since(bound)
	b.ReportMetric(float64(n), "scheduled-events")
	b.ReportMetric(lag.Seconds(), "events-lag-s")
	b.Logf("Scheduled events written: %d of %d, the last %v after the last binding", n, benchPods, lag.Round(100*time.Millisecond))
}

// boundCounter counts pods seen bound and reports when all are.
func boundCounter(done chan<- time.Time) toolscache.ResourceEventHandler {
	var mu sync.Mutex
	seen := map[string]bool{}
	var n atomic.Int64
	count := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[p.Name] {
			return
		}
		seen[p.Name] = true
		if n.Add(1) == benchPods {
			done <- time.Now()
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    count,
		UpdateFunc: func(_, obj any) { count(obj) },
	}
}

// podBodies encodes the benchmark's pods ahead of time, so the load
// generator spends as little CPU as it can.
func podBodies(b *testing.B) [][]byte {
	bodies := make([][]byte, benchPods)
	for i := range bodies {
		p := testPod(fmt.Sprintf("pod-%05d", i), "10m", "16Mi")
		p.UID = ""
		p.APIVersion, p.Kind = "v1", "Pod"
		data, err := json.Marshal(p)
		if err != nil {
			b.Fatalf("marshal: %v", err)
		}
		bodies[i] = data
	}
	return bodies
}

// parallel runs f(0..n-1) on benchWriters goroutines, failing on the
// first error.
func parallel(b *testing.B, n int, f func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range benchWriters {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("create: %v", firstErr)
	}
}

func waitFor(b *testing.B, what string, cond func() bool) {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
