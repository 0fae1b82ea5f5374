package hollow_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik-dev/minik/agent/hollow"
)

// BenchmarkHollowDaemonSets measures daemon pods beside pods created
// directly, in one run on one cluster of HOLLOW_NODES (default 1,000)
// hollow nodes:
//
//  1. direct: as many pods as the DaemonSets will make, created through
//     the API, until all are bound; then deleted;
//  2. daemonsets: HOLLOW_DAEMONSETS (default 10) DaemonSets, until each
//     has a pod bound on every node (DaemonSet → pod with a metadata.name
//     affinity → scheduler);
//  3. rollout: every DaemonSet's template changed at once (RollingUpdate,
//     maxUnavailable 20%), until every DaemonSet reports all its pods
//     updated and available.
//
// HOLLOW_CPUPROFILE=FILE writes a CPU profile of phase 2.
//
//	go test -run '^$' -bench HollowDaemonSets -benchtime 1x -timeout 15m ./agent/hollow
func BenchmarkHollowDaemonSets(b *testing.B) {
	nodes, sets := envInt("HOLLOW_NODES", 1000), envInt("HOLLOW_DAEMONSETS", 10)
	for b.Loop() {
		benchDaemonSets(b, nodes, sets)
	}
}

func benchDaemonSets(b *testing.B, nodes, sets int) {
	lg := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	c := startServer(b, ctx, lg)
	c.client = benchClient(b, c)
	startNodeProcess(b, hollow.Config{
		Server: c.url, Token: c.token, Count: nodes, DataDir: b.TempDir(),
		CPU: "32", Memory: "64Gi", Logger: lg,
	})
	pollFor(b, ctx, fmt.Sprintf("%d Ready nodes", nodes), func() bool {
		list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == nodes && allReady(list.Items)
	})
	bound := newBoundCounter(b, ctx, c)
	total := nodes * sets

	start := time.Now()
	createPods(b, ctx, c, total)
	bound.waitFor(b, ctx, func(p *corev1.Pod) bool { return p.Labels["daemon"] == "" }, total)
	direct := float64(total) / time.Since(start).Seconds()
	zero := int64(0)
	if err := c.client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	pollFor(b, ctx, "direct pods gone", func() bool {
		list, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0
	})

	serverBefore := processCPU(b)
	stopProfile := startCPUProfile(b, os.Getenv("HOLLOW_CPUPROFILE"))
	start = time.Now()
	forEach(b, sets, func(i int) error {
		_, err := c.client.AppsV1().DaemonSets("default").Create(ctx, benchDaemonSet(i), metav1.CreateOptions{})
		return err
	})
	bound.waitFor(b, ctx, func(p *corev1.Pod) bool { return p.Labels["daemon"] != "" }, total)
	created := time.Since(start)
	stopProfile()
	pollFor(b, ctx, "every DaemonSet available", func() bool { return daemonSetsDone(ctx, c, sets, int32(nodes)) })
	serverCreate := processCPU(b) - serverBefore

	start = time.Now()
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"bench/rolled":"1"}}}}}`)
	forEach(b, sets, func(i int) error {
		_, err := c.client.AppsV1().DaemonSets("default").Patch(ctx, fmt.Sprintf("ds-%02d", i), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	pollFor(b, ctx, "every rollout complete", func() bool { return daemonSetsDone(ctx, c, sets, int32(nodes)) })
	rolled := time.Since(start)

	viaDaemonSets := float64(total) / created.Seconds()
	b.ReportMetric(direct, "direct-pods/s")
	b.ReportMetric(viaDaemonSets, "daemon-pods/s")
	b.ReportMetric(viaDaemonSets/direct, "ratio")
	b.ReportMetric(float64(total)/rolled.Seconds(), "rollout-pods/s")
	b.ReportMetric(float64(serverCreate)/float64(total)/float64(time.Millisecond), "server-cpu-ms/pod")
	b.Logf("%d nodes: %d pods created directly bound at %.0f pods/s; %d DaemonSets bound %d pods at %.0f pods/s (%.2f of direct); rollout of all complete in %v (%.0f pods/s)",
		nodes, total, direct, sets, total, viaDaemonSets, viaDaemonSets/direct, rolled.Round(time.Millisecond), float64(total)/rolled.Seconds())
}

func benchDaemonSet(i int) *appsv1.DaemonSet {
	labels := map[string]string{"daemon": fmt.Sprintf("ds-%02d", i)}
	fifth := intstr.FromString("20%")
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: labels["daemon"], Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &fifth}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}},
			},
		},
	}
}

// daemonSetsDone tells whether all n DaemonSets have observed their
// latest spec and report a pod updated and available on each of nodes.
func daemonSetsDone(ctx context.Context, c *cluster, n int, nodes int32) bool {
	list, err := c.client.AppsV1().DaemonSets("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != n {
		return false
	}
	for _, ds := range list.Items {
		s := ds.Status
		if s.ObservedGeneration < ds.Generation || s.DesiredNumberScheduled != nodes || s.UpdatedNumberScheduled != nodes ||
			s.NumberAvailable != nodes || s.CurrentNumberScheduled != nodes {
			return false
		}
	}
	return true
}
