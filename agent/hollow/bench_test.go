package hollow_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/agent/hollow"
	"github.com/minik-dev/minik/internal/procstatus"
)

// BenchmarkHollowCluster runs a real server (TLS, node service,
// controllers, scheduler) in the benchmark's process and hollow nodes in a
// child process, as they would run on other machines (HOLLOW_PROCESS=same
// runs them in the benchmark's process). It creates pods through the API
// and reports how fast they become bound and Running; the CPU per pod of
// both processes (which, unlike pods/s, does not depend on what else the
// machine runs) and of the server alone; the CPU both use while the nodes
// are connected and idle; and the server's RSS and the nodes'. The CPU
// profiles cover the benchmark's process only. It also logs the server's request and commit latencies and the
// goroutine scheduling latency. HOLLOW_NODES (default 1000) and HOLLOW_PODS (default 10000) set the size;
// HOLLOW_CPUPROFILE=FILE writes a CPU profile of the pod phase only (from
// the first create to all Running), without node registration;
// HOLLOW_IDLEPROFILE=FILE one of the idle period before it;
// HOLLOW_ALLOCPROFILE=FILE writes the allocations of the whole run, and
// FILE.before those until the pod phase (go tool pprof -diff_base
// FILE.before FILE shows the pod phase's);
// HOLLOW_CREATORS (default 384) is how many pods are created at once:
// enough requests in flight that the cluster, not the benchmark's client,
// sets the pace (each create waits for a store commit, and the commits
// that follow it wait their turn);
// HOLLOW_CLIENT=json makes the benchmark's creates speak JSON, as kubectl
// does, instead of client-go's protobuf (the informer that observes the
// pods always speaks protobuf).
//
//	go test -run '^$' -bench HollowCluster -benchtime 1x -timeout 10m ./agent/hollow
func BenchmarkHollowCluster(b *testing.B) {
	nodes, pods := envInt("HOLLOW_NODES", 1000), envInt("HOLLOW_PODS", 10000)
	for b.Loop() {
		benchHollow(b, nodes, pods)
	}
}

func benchHollow(b *testing.B, nodes, pods int) {
	lg := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := startServer(b, ctx, lg)
	c.client = benchClient(b, c)
	start := time.Now()
	cfg := hollow.Config{
		Server: c.url, Token: c.token, Count: nodes, DataDir: b.TempDir(),
		CPU: "32", Memory: "64Gi", Logger: lg,
	}
	// cpu is the CPU the server (with the benchmark's client) and the
	// nodes have used.
	cpu := func() (server, all time.Duration) { s := processCPU(b); return s, s }
	var np *nodeProcess
	if os.Getenv("HOLLOW_PROCESS") == "same" {
		runHollow(b, ctx, cfg)
	} else {
		np = startNodeProcess(b, cfg)
		cpu = func() (server, all time.Duration) { s := processCPU(b); return s, s + np.cpu(b) }
	}
	pollFor(b, ctx, fmt.Sprintf("%d Ready nodes", nodes), func() bool {
		list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == nodes && allReady(list.Items)
	})
	b.Logf("%d hollow nodes registered and Ready in %v", nodes, time.Since(start).Round(time.Millisecond))
	stopIdle := startCPUProfile(b, os.Getenv("HOLLOW_IDLEPROFILE"))
	_, idleBefore := cpu()
	time.Sleep(5 * time.Second)
	_, idleAfter := cpu()
	idle := 100 * float64(idleAfter-idleBefore) / float64(5*time.Second)
	stopIdle()
	b.ReportMetric(idle, "idle-cpu-%")
	b.Logf("with %d nodes connected and no pods, server and nodes use %.0f%% of a CPU", nodes, idle)

	bound, running := countPods(b, ctx, c, pods)
	writeAllocProfile(b, allocProfileBefore())
	stopProfile := startCPUProfile(b, os.Getenv("HOLLOW_CPUPROFILE"))
	schedBefore := schedLatencies()
	serverBefore, cpuBefore := cpu()
	start = time.Now()
	createPods(b, ctx, c, pods)
	created := time.Since(start)
	var boundAfter time.Duration
	select {
	case end := <-bound:
		boundAfter = end.Sub(start)
	case <-ctx.Done():
		b.Fatalf("not all %d pods bound in time", pods)
	}
	select {
	case end := <-running:
		stopProfile()
		serverAfter, cpuAfter := cpu()
		cpuPerPod := (cpuAfter - cpuBefore) / time.Duration(pods)
		serverPerPod := (serverAfter - serverBefore) / time.Duration(pods)
		d := end.Sub(start)
		rss := procstatus.KiB(procstatus.Self, "VmRSS") / 1024
		b.ReportMetric(float64(pods)/boundAfter.Seconds(), "bound-pods/s")
		b.ReportMetric(float64(pods)/d.Seconds(), "running-pods/s")
		b.ReportMetric(float64(rss), "rss-MiB")
		// CPU per pod does not depend on how much of the machine the
		// processes got, which pods/s does.
		b.ReportMetric(float64(cpuPerPod)/float64(time.Millisecond), "cpu-ms/pod")
		b.Logf("%d pods on %d hollow nodes: created in %v (%.0f pods/s), all bound after %v (%.0f pods/s), all Running after %v (%.0f pods/s); server RSS %d MiB, peak %d MiB",
			pods, nodes, created.Round(time.Millisecond), float64(pods)/created.Seconds(),
			boundAfter.Round(time.Millisecond), float64(pods)/boundAfter.Seconds(),
			d.Round(time.Millisecond), float64(pods)/d.Seconds(), rss, procstatus.KiB(procstatus.Self, "VmHWM")/1024)
		b.Logf("CPU per pod, creation to Running: %v, of which the server's (with the benchmark's client) %v",
			cpuPerPod.Round(time.Microsecond), serverPerPod.Round(time.Microsecond))
		if np != nil {
			b.ReportMetric(float64(serverPerPod)/float64(time.Millisecond), "server-cpu-ms/pod")
			b.ReportMetric(float64(np.rssMiB("VmRSS")), "nodes-rss-MiB")
			b.Logf("the hollow node process: RSS %d MiB, peak %d MiB", np.rssMiB("VmRSS"), np.rssMiB("VmHWM"))
		}
		logServerMetrics(b, ctx, c)
		writeAllocProfile(b, os.Getenv("HOLLOW_ALLOCPROFILE"))
		logSchedLatency(b, schedBefore, schedLatencies())
	case <-ctx.Done():
		b.Fatalf("not all %d pods Running in time", pods)
	}
}

// countPods reports, from one informer, when n pods have been seen bound
// to a node and when n have been seen Running.
func countPods(b *testing.B, ctx context.Context, c *cluster, n int) (bound, running <-chan time.Time) {
	// The observer speaks protobuf, as Kubernetes components do, so that
	// the instrument costs little of the CPU it shares with the cluster.
	factory := informers.NewSharedInformerFactory(protobufClient(c), 0)
	inf := factory.Core().V1().Pods().Informer()
	boundc, runningc := make(chan time.Time, 1), make(chan time.Time, 1)
	var mu sync.Mutex
	seenBound, seenRunning := map[string]bool{}, map[string]bool{}
	mark := func(seen map[string]bool, name string, done chan time.Time) {
		if !seen[name] {
			seen[name] = true
			if len(seen) == n {
				done <- time.Now()
			}
		}
	}
	count := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if p.Spec.NodeName != "" {
			mark(seenBound, p.Name, boundc)
		}
		if p.Status.Phase == corev1.PodRunning {
			mark(seenRunning, p.Name, runningc)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: count, UpdateFunc: func(_, o any) { count(o) }}); err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	b.Cleanup(factory.Shutdown)
	return boundc, runningc
}

func createPods(b *testing.B, ctx context.Context, c *cluster, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range envInt("HOLLOW_CREATORS", 384) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Namespace: "default"},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause", Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}},
				}
				if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("create pod: %v", err)
	}
}

// schedLatencies reads the runtime's histogram of how long goroutines
// waited to run once runnable.
func schedLatencies() *metrics.Float64Histogram {
	m := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return m[0].Value.Float64Histogram()
}

// logSchedLatency logs percentiles of the goroutine scheduling latency
// between two readings: on a machine of few cores, the time every
// hand-off between goroutines (a request and its handler, a commit and
// its writers) waits for a CPU.
func logSchedLatency(b *testing.B, before, after *metrics.Float64Histogram) {
	if before == nil || after == nil {
		return
	}
	counts := make([]uint64, len(after.Counts))
	var total uint64
	for i := range counts {
		counts[i] = after.Counts[i] - before.Counts[i]
		total += counts[i]
	}
	if total == 0 {
		return
	}
	pct := func(p float64) time.Duration {
		var n uint64
		for i, c := range counts {
			if n += c; float64(n) >= p*float64(total) {
				return time.Duration(after.Buckets[i+1] * float64(time.Second)) // upper bound
			}
		}
		return 0
	}
	b.Logf("goroutine scheduling latency during the pod phase: %d wake-ups, p50 ≤ %v, p90 ≤ %v, p99 ≤ %v",
		total, pct(0.5), pct(0.9), pct(0.99))
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPUProfile starts a CPU profile into file, if named, and returns
// what stops it.
func startCPUProfile(b *testing.B, file string) (stop func()) {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				b.Error(err)
			}
		})
	}
	b.Cleanup(stop)
	return stop
}

// logServerMetrics logs the server's own view of the run: mean latency of
// pod creates, bindings and status updates, and of store commits.
func logServerMetrics(b *testing.B, ctx context.Context, c *cluster) {
	raw, err := c.client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Logf("server metrics: %v", err)
		return
	}
	sums := map[string]float64{}
	for line := range strings.Lines(string(raw)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			sums[name] = v
		}
	}
	mean := func(metric, labels string) string {
		n := sums[metric+"_count"+labels]
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f ms (%.0f)", 1000*sums[metric+"_sum"+labels]/n, n)
	}
	const req = "apiserver_request_duration_seconds"
	b.Logf("server mean latency: pod create and binding %s, get %s, update %s; store commit %s, %.1f writes per commit",
		mean(req, `{resource="pods",verb="create"}`), mean(req, `{resource="pods",verb="get"}`),
		mean(req, `{resource="pods",verb="update"}`), mean("minik_store_commit_duration_seconds", ""),
		sums["minik_store_commit_group_size_sum"]/max(1, sums["minik_store_commit_group_size_count"]))
}

func pollFor(b *testing.B, ctx context.Context, what string, cond func() bool) {
	for !cond() {
		select {
		case <-ctx.Done():
			b.Fatalf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchClient is the client the benchmark creates pods with: the admin
// kubeconfig's, whose typed client-go clients send and accept protobuf
// unless told otherwise, or with HOLLOW_CLIENT=json one that sends and
// accepts JSON, as kubectl does.
func benchClient(b *testing.B, c *cluster) kubernetes.Interface {
	switch v := os.Getenv("HOLLOW_CLIENT"); v {
	case "", "protobuf":
		return c.client
	case "json":
		b.Logf("the benchmark's client speaks JSON")
		cfg := rest.CopyConfig(c.config)
		cfg.ContentType = "application/json"
		cfg.AcceptContentTypes = "application/json"
		return kubernetes.NewForConfigOrDie(cfg)
	default:
		b.Fatalf("HOLLOW_CLIENT=%q: want protobuf or json", v)
		return nil
	}
}

// protobufClient is a client of c that sends and accepts protobuf.
func protobufClient(c *cluster) kubernetes.Interface {
	cfg := rest.CopyConfig(c.config)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfigOrDie(cfg)
}

// allocProfileBefore names the allocation profile written before the pod
// phase, if any.
func allocProfileBefore() string {
	if f := os.Getenv("HOLLOW_ALLOCPROFILE"); f != "" {
		return f + ".before"
	}
	return ""
}

// writeAllocProfile writes the allocation profile of the run so far to
// file, if named.
func writeAllocProfile(b *testing.B, file string) {
	if file == "" {
		return
	}
	// The profile reflects the last collection: collect now, so that it
	// counts everything allocated so far.
	runtime.GC()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Error(err)
	}
}
