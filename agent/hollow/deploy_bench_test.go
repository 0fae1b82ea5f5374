package hollow_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/agent/hollow"
	"github.com/minik-dev/minik/internal/procstatus"
	"github.com/minik-dev/minik/server"
	"github.com/minik-dev/minik/server/controllers"
)

// BenchmarkHollowDeployments measures pods made through workload
// controllers beside pods created directly, in one run on one cluster of
// hollow nodes (a child process, as in BenchmarkHollowCluster):
//
//  1. direct: HOLLOW_PODS (default 10,000) pods created through the API,
//     until all are bound; then deleted;
//  2. deployments: HOLLOW_DEPLOYMENTS (default 100) Deployments of
//     HOLLOW_REPLICAS (default 100) replicas, until all their pods are
//     bound (Deployment → ReplicaSet → pod → scheduler);
//  3. rollout: every Deployment's template changed at once, until every
//     Deployment reports all replicas updated and available and the old
//     ReplicaSets are empty.
//
// It reports bound pods/s of each phase, the ratio of phase 2 to phase 1,
// the server's CPU per pod of phases 2 and 3, and the server's RSS.
// HOLLOW_CPUPROFILE=FILE writes a CPU profile of phase 2.
//
// HOLLOW_UPSTREAM_CONTROLLERS=BIN runs Kubernetes' own workload
// controllers instead of minik's: BIN is test/conformance/upstream-controllers
// built, started in a process of its own on the admin kubeconfig with no
// client rate limit (minik's controllers have none either), and the server
// runs with those controllers disabled. That process's CPU per pod and RSS
// are reported beside the server's, and added to them in total-cpu-ms/pod.
//
//	go test -run '^$' -bench HollowDeployments -benchtime 1x -timeout 15m ./agent/hollow
func BenchmarkHollowDeployments(b *testing.B) {
	nodes, pods := envInt("HOLLOW_NODES", 1000), envInt("HOLLOW_PODS", 10000)
	deployments, replicas := envInt("HOLLOW_DEPLOYMENTS", 100), envInt("HOLLOW_REPLICAS", 100)
	for b.Loop() {
		benchDeployments(b, nodes, pods, deployments, replicas)
	}
}

func benchDeployments(b *testing.B, nodes, pods, deployments, replicas int) {
	lg := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	upstream := os.Getenv("HOLLOW_UPSTREAM_CONTROLLERS")
	c := startServer(b, ctx, lg, func(cfg *server.Config) {
		if upstream != "" {
			cfg.DisableControllers = upstreamControllerNames
		}
	})
	c.client = benchClient(b, c)
	ctl := startUpstreamControllers(b, c, upstream)
	np := startNodeProcess(b, hollow.Config{
		Server: c.url, Token: c.token, Count: nodes, DataDir: b.TempDir(),
		CPU: "32", Memory: "64Gi", Logger: lg,
	})
	pollFor(b, ctx, fmt.Sprintf("%d Ready nodes", nodes), func() bool {
		list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == nodes && allReady(list.Items)
	})
	bound := newBoundCounter(b, ctx, c)

	// 1. Direct pods, the baseline of this run.
	start := time.Now()
	createPods(b, ctx, c, pods)
	bound.waitFor(b, ctx, func(p *corev1.Pod) bool { return p.Labels["app"] == "" }, pods)
	direct := float64(pods) / time.Since(start).Seconds()
	zero := int64(0)
	if err := c.client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	pollFor(b, ctx, "direct pods gone", func() bool {
		list, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0
	})

	// 2. The same number of pods again through Deployments.
	total := deployments * replicas
	serverBefore, ctlBefore := processCPU(b), ctl.cpu(b)
	stopProfile := startCPUProfile(b, os.Getenv("HOLLOW_CPUPROFILE"))
	start = time.Now()
	createDeployments(b, ctx, c, deployments, int32(replicas))
	bound.waitFor(b, ctx, func(p *corev1.Pod) bool { return p.Labels["app"] != "" }, total)
	created := time.Since(start)
	stopProfile()
	pollFor(b, ctx, "every Deployment available", func() bool { return deploymentsDone(ctx, c, deployments, int32(replicas)) })
	serverCreate, ctlCreate := processCPU(b)-serverBefore, ctl.cpu(b)-ctlBefore
	// Said now too, so that a rollout that runs out of time loses none of it.
	b.Logf("%d nodes: %d pods created directly bound at %.0f pods/s; through Deployments at %.0f pods/s (%.2f of direct); server CPU per pod %v",
		nodes, pods, direct, float64(total)/created.Seconds(), float64(total)/created.Seconds()/direct,
		(serverCreate / time.Duration(total)).Round(time.Microsecond))

	// 3. Roll every Deployment at once.
	serverBefore, ctlBefore = processCPU(b), ctl.cpu(b)
	start = time.Now()
	rollDeployments(b, ctx, c, deployments)
	pollFor(b, ctx, "every rollout complete", func() bool { return deploymentsDone(ctx, c, deployments, int32(replicas)) })
	rolled := time.Since(start)
	serverRoll, ctlRoll := processCPU(b)-serverBefore, ctl.cpu(b)-ctlBefore

	viaDeployments := float64(total) / created.Seconds()
	rss := procstatus.KiB(procstatus.Self, "VmRSS") / 1024
	b.ReportMetric(direct, "direct-pods/s")
	b.ReportMetric(viaDeployments, "deployment-pods/s")
	b.ReportMetric(viaDeployments/direct, "ratio")
	b.ReportMetric(float64(total)/rolled.Seconds(), "rollout-pods/s")
	b.ReportMetric(float64(serverCreate)/float64(total)/float64(time.Millisecond), "server-cpu-ms/pod")
	b.ReportMetric(float64(rss), "rss-MiB")
	b.ReportMetric(float64(serverCreate+ctlCreate)/float64(total)/float64(time.Millisecond), "total-cpu-ms/pod")
	b.ReportMetric(float64(serverRoll+ctlRoll)/float64(total)/float64(time.Millisecond), "total-rollout-cpu-ms/pod")
	if upstream != "" {
		b.ReportMetric(float64(ctlCreate)/float64(total)/float64(time.Millisecond), "controllers-cpu-ms/pod")
		b.ReportMetric(float64(ctl.rssMiB("VmRSS")), "controllers-rss-MiB")
		b.Logf("upstream controllers (%s): CPU per pod: create %v, rollout %v; RSS %d MiB (peak %d)", upstream,
			(ctlCreate / time.Duration(total)).Round(time.Microsecond), (ctlRoll / time.Duration(total)).Round(time.Microsecond),
			ctl.rssMiB("VmRSS"), ctl.rssMiB("VmHWM"))
	}
	b.Logf("%d nodes: %d pods created directly bound at %.0f pods/s; %d Deployments × %d replicas bound at %.0f pods/s (%.2f of direct), all available after %v",
		nodes, pods, direct, deployments, replicas, viaDeployments, viaDeployments/direct, time.Since(start.Add(-created)).Round(time.Millisecond))
	b.Logf("rollout of all %d Deployments complete in %v (%.0f pods/s); server CPU per pod: create %v, rollout %v; server RSS %d MiB (peak %d), nodes %d MiB",
		deployments, rolled.Round(time.Millisecond), float64(total)/rolled.Seconds(),
		(serverCreate / time.Duration(total)).Round(time.Microsecond), (serverRoll / time.Duration(total)).Round(time.Microsecond),
		rss, procstatus.KiB(procstatus.Self, "VmHWM")/1024, np.rssMiB("VmRSS"))
}

// upstreamControllerNames are the controllers test/conformance/upstream-controllers runs.
var upstreamControllerNames = []string{
	controllers.ReplicationControllerName, controllers.ReplicaSetControllerName, controllers.DeploymentControllerName,
	controllers.DaemonSetControllerName, controllers.StatefulSetControllerName, controllers.JobControllerName, controllers.CronJobControllerName,
}

// startUpstreamControllers starts bin, if named, on c's admin kubeconfig,
// in a process group of its own that b's cleanup ends; its log goes to a
// file whose tail is printed if b fails. It returns nil for no bin: a nil
// *nodeProcess uses no CPU.
func startUpstreamControllers(b *testing.B, c *cluster, bin string) *nodeProcess {
	if bin == "" {
		return nil
	}
	logFile := filepath.Join(b.TempDir(), "upstream-controllers.log")
	out, err := os.Create(logFile)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { // after the process has stopped
		out.Close()
		if b.Failed() {
			if data, err := os.ReadFile(logFile); err == nil {
				b.Logf("upstream controllers' log (last 4 KiB):\n%s", data[max(0, len(data)-4096):])
			}
		}
	})
	cmd := exec.Command(bin, "--kubeconfig", c.kubeconfig, "--kube-api-qps", "-1", "--controllers", strings.Join(upstreamControllerNames, ","))
	cmd.Stdout, cmd.Stderr = out, out
	return startChild(b, cmd, "upstream controllers")
}

// boundCounter follows pods with one protobuf informer and counts, for
// waitFor, the distinct pods bound to a node.
type boundCounter struct {
	mu    sync.Mutex
	cond  *sync.Cond
	bound map[types.UID]bool
	order []*corev1.Pod // the bound pods, in the order seen
}

func newBoundCounter(b *testing.B, ctx context.Context, c *cluster) *boundCounter {
	bc := &boundCounter{bound: map[types.UID]bool{}}
	bc.cond = sync.NewCond(&bc.mu)
	factory := informers.NewSharedInformerFactory(protobufClient(c), 0)
	inf := factory.Core().V1().Pods().Informer()
	see := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			bc.mu.Lock()
			if !bc.bound[p.UID] {
				bc.bound[p.UID] = true
				bc.order = append(bc.order, p)
				bc.cond.Broadcast()
			}
			bc.mu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: see, UpdateFunc: func(_, o any) { see(o) }}); err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	b.Cleanup(factory.Shutdown)
	go func() { <-ctx.Done(); bc.cond.Broadcast() }()
	return bc
}

// waitFor returns when n distinct pods that match have been seen bound.
// Each wake-up looks only at the pods bound since the last, so that the
// count costs the same whatever was bound before.
func (bc *boundCounter) waitFor(b *testing.B, ctx context.Context, match func(*corev1.Pod) bool, n int) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	count, next := 0, 0
	for {
		for ; next < len(bc.order); next++ {
			if match(bc.order[next]) {
				count++
			}
		}
		if count >= n {
			return
		}
		if ctx.Err() != nil {
			b.Fatalf("%d of %d pods bound in time", count, n)
		}
		bc.cond.Wait()
	}
}

func benchDeployment(i int, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": fmt.Sprintf("d-%03d", i)}
	zero := intstr.FromInt32(0)
	quarter := intstr.FromString("25%")
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: labels["app"], Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &quarter}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}},
			},
		},
	}
}

func createDeployments(b *testing.B, ctx context.Context, c *cluster, n int, replicas int32) {
	forEach(b, n, func(i int) error {
		_, err := c.client.AppsV1().Deployments("default").Create(ctx, benchDeployment(i, replicas), metav1.CreateOptions{})
		return err
	})
}

// rollDeployments changes every Deployment's pod template (an
// annotation, as `kubectl rollout restart` does).
func rollDeployments(b *testing.B, ctx context.Context, c *cluster, n int) {
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"bench/rolled":"1"}}}}}`)
	forEach(b, n, func(i int) error {
		_, err := c.client.AppsV1().Deployments("default").Patch(ctx, fmt.Sprintf("d-%03d", i), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// forEach runs f for 0..n-1 from 16 goroutines and fails b on an error.
func forEach(b *testing.B, n int, f func(int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if err := f(int(i)); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// deploymentsDone tells whether all n Deployments have observed their
// latest spec and report every replica updated and available, and no
// other.
func deploymentsDone(ctx context.Context, c *cluster, n int, replicas int32) bool {
	list, err := c.client.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != n {
		return false
	}
	for _, d := range list.Items {
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != replicas ||
			s.AvailableReplicas != replicas || s.Replicas != replicas {
			return false
		}
	}
	return true
}
