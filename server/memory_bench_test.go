package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/internal/procstatus"
	"github.com/minik-dev/minik/server/pki"
)

// largeObjectsAnonLimitMiB is the stated bound of the server's anonymous
// resident memory (its heap, without bbolt's file-backed map) under
// BenchmarkLargeObjectMemory with the default flags: the bounded caches
// and buffers (window 64 MiB, three caches of 32 MiB, node sessions'
// replay 64 MiB, the watch's 16 + 8 MiB) and what the controllers keep of
// the 20 pods, twice over for the garbage collector's headroom, and the
// writes in flight.
const largeObjectsAnonLimitMiB = 1024

// serverProcessEnv carries, as JSON, the Config of a server that a
// re-executed test binary runs instead of its tests, so that a benchmark
// measures the server's memory apart from its client's. SIGUSR1 makes
// that server return freed memory to the system (debug.FreeOSMemory).
const serverProcessEnv = "MINIK_SERVER_PROCESS"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(serverProcessEnv); cfg != "" {
		os.Exit(runServerProcess(cfg))
	}
	os.Exit(m.Run())
}

func runServerProcess(data string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(data), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "server process: %s: %v\n", serverProcessEnv, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	free := make(chan os.Signal, 1)
	signal.Notify(free, syscall.SIGUSR1)
	go func() {
		for range free {
			debug.FreeOSMemory()
		}
	}()
	if err := Run(ctx, cfg); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "server process: %v\n", err)
		return 1
	}
	return 0
}

// BenchmarkLargeObjectMemory runs a real server (without its embedded
// agent) in a child process and writes MEMBENCH_WRITES (default 2,000)
// pod statuses of MEMBENCH_OBJECT_KIB (default 1,024) KiB each, spread
// over MEMBENCH_PODS (default 20) pods by MEMBENCH_WRITERS (default 8)
// writers at once, while a JSON watch of all pods reads along. It reports
// the server's resident memory: idle before the writes, its peak during
// them (VmHWM), and after them once the watch has seen the last write,
// MEMBENCH_SETTLE_SECONDS (default 130: the store's window and the API's
// caches keep changes 2 minutes at most) have passed and the server has
// been asked to return freed memory (SIGUSR1 → debug.FreeOSMemory). anon-MiB figures leave out bbolt's file-backed
// memory map, which the kernel may drop at will.
//
//	go test -run '^$' -bench LargeObjectMemory -benchtime 1x -timeout 20m ./server
func BenchmarkLargeObjectMemory(b *testing.B) {
	for b.Loop() {
		benchLargeObjects(b, envInt("MEMBENCH_WRITES", 2000), envInt("MEMBENCH_PODS", 20),
			envInt("MEMBENCH_OBJECT_KIB", 1024)<<10, envInt("MEMBENCH_WRITERS", 8))
	}
}

func benchLargeObjects(b *testing.B, writes, pods, size, writers int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	settle := time.Duration(envInt("MEMBENCH_SETTLE_SECONDS", 130)) * time.Second
	srv := startServerProcess(b)
	client := srv.client(b, ctx)
	podsAPI := client.CoreV1().Pods("default")
	for i := range pods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%d", i)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if _, err := podsAPI.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	seen := srv.watchPods(b, ctx)
	time.Sleep(2 * time.Second)
	srv.freeMemory()
	idle, idleAnon := srv.rssMiB("VmRSS"), srv.rssMiB("RssAnon")

	var next, lastRV atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := next.Add(1); n <= int64(writes); n = next.Add(1) {
				rv, err := writeBigStatus(ctx, podsAPI, fmt.Sprintf("big-%d", n%int64(pods)), n, size)
				if err != nil {
					b.Error(err)
					return
				}
				for cur := lastRV.Load(); rv > cur && !lastRV.CompareAndSwap(cur, rv); cur = lastRV.Load() {
				}
			}
		}()
	}
	var peakAnon atomic.Int64
	sampled := make(chan struct{})
	go func() { // RssAnon has no high-water mark of its own
		defer close(sampled)
		for !waitTimeout(&wg, 100*time.Millisecond) {
			peakAnon.Store(max(peakAnon.Load(), srv.rssMiB("RssAnon")))
		}
	}()
	<-sampled
	elapsed := time.Since(start)
	peak := srv.rssMiB("VmHWM")
	deadline := time.Now().Add(2 * time.Minute)
	for seen.Load() < lastRV.Load() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if seen.Load() < lastRV.Load() {
		b.Errorf("watch saw revision %d, want %d", seen.Load(), lastRV.Load())
	}
	time.Sleep(settle)
	srv.freeMemory()
	after, afterAnon := srv.rssMiB("VmRSS"), srv.rssMiB("RssAnon")
	b.ReportMetric(float64(writes)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(idle), "idle-MiB")
	b.ReportMetric(float64(peak), "peak-MiB")
	b.ReportMetric(float64(after), "after-MiB")
	b.ReportMetric(float64(peakAnon.Load()), "peak-anon-MiB")
	b.ReportMetric(float64(afterAnon), "after-anon-MiB")
	b.Logf("%d writes of %d KiB over %d pods: RSS idle %d MiB (anon %d), peak %d MiB (anon %d), after %d MiB (anon %d)",
		writes, size>>10, pods, idle, idleAnon, peak, peakAnon.Load(), after, afterAnon)
	if peakAnon.Load() > largeObjectsAnonLimitMiB {
		b.Logf("peak anonymous RSS %d MiB is over the stated bound of %d MiB", peakAnon.Load(), largeObjectsAnonLimitMiB)
	}
}

// writeBigStatus stores a status message of size bytes in pod name, unique
// to write n, and returns the revision written.
func writeBigStatus(ctx context.Context, pods interface {
	UpdateStatus(context.Context, *corev1.Pod, metav1.UpdateOptions) (*corev1.Pod, error)
	Get(context.Context, string, metav1.GetOptions) (*corev1.Pod, error)
}, name string, n int64, size int) (int64, error) {
	msg := fmt.Sprintf("%08d", n) + strings.Repeat("m", size-8)
	for {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		pod.Status.Message = msg
		up, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err == nil {
			var rv int64
			fmt.Sscan(up.ResourceVersion, &rv)
			return rv, nil
		}
		if ctx.Err() != nil || !strings.Contains(err.Error(), "modified") {
			return 0, err
		}
	}
}

// waitTimeout waits up to d for wg and reports whether it is done.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// serverProcess is a server running in a child process.
type serverProcess struct {
	pid    int
	dir    string
	config *rest.Config
}

// startServerProcess runs a server in a child process (its own process
// group, killed if the benchmark dies) until the benchmark ends.
func startServerProcess(b *testing.B) *serverProcess {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := b.TempDir()
	data, err := json.Marshal(Config{
		DataDir: dir, HTTPSPort: port, BindAddress: "127.0.0.1", DisableAgent: true,
		ClusterCIDR: "10.64.0.0/10", ServiceCIDR: "10.43.0.0/16",
	})
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serverProcessEnv+"="+string(data))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(testTimeout):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			b.Errorf("server process did not stop on SIGTERM")
		}
	})
	return &serverProcess{pid: cmd.Process.Pid, dir: dir}
}

// client waits for the server to answer and returns an admin client.
func (p *serverProcess) client(b *testing.B, ctx context.Context) kubernetes.Interface {
	deadline := time.Now().Add(time.Minute)
	for {
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(p.dir, pki.KubeconfigFile))
		if err == nil {
			cfg.QPS, cfg.Burst = -1, -1
			c := kubernetes.NewForConfigOrDie(cfg)
			if _, err = c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
				p.config = cfg
				return c
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("server not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchPods watches every pod in JSON, as kubectl get -w does, and
// returns the last revision the watch has seen.
func (p *serverProcess) watchPods(b *testing.B, ctx context.Context) *atomic.Int64 {
	cfg := rest.CopyConfig(p.config)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := hc.Get(cfg.Host + "/api/v1/pods?watch=1&resourceVersion=0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { resp.Body.Close() })
	var seen atomic.Int64
	go func() {
		r := bufio.NewReaderSize(resp.Body, 1<<20)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					b.Logf("watch: %v", err)
				}
				return
			}
			var ev struct {
				Object struct {
					Metadata struct {
						ResourceVersion string `json:"resourceVersion"`
					} `json:"metadata"`
				} `json:"object"`
			}
			if json.Unmarshal(line, &ev) == nil {
				var rv int64
				fmt.Sscan(ev.Object.Metadata.ResourceVersion, &rv)
				seen.Store(max(seen.Load(), rv))
			}
		}
	}()
	return &seen
}

// freeMemory asks the server to return freed memory to the system and
// gives it a moment to.
func (p *serverProcess) freeMemory() {
	syscall.Kill(p.pid, syscall.SIGUSR1)
	time.Sleep(time.Second)
}

// rssMiB is a memory field of the server's /proc status, in MiB.
func (p *serverProcess) rssMiB(field string) int64 {
	return procstatus.KiB(procstatus.Of(p.pid), field) / 1024
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil || v <= 0 {
		return def
	}
	return v
}
