//go:build integration

package runtime_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// BenchmarkIntegrationPodStart measures pod create→running (sandbox plus
// one container) for single pods and for a burst of 30, beside a bare
// containerd container start on the same containerd:
//
//	MINIK_INTEGRATION=1 go test -tags integration -run '^$' -bench PodStart -benchtime 20x ./runtime/
func BenchmarkIntegrationPodStart(b *testing.B) {
	e := newEnv(b)
	b.Run("bare", func(b *testing.B) { reportLatencies(b, e.benchBare(b)) })
	b.Run("single", func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			lat = append(lat, e.startPod(b, fmt.Sprintf("single-%d", i)))
		}
		reportLatencies(b, lat)
		e.removeAll(b)
	})
	b.Run("burst30", func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			lat = append(lat, e.burst(b, i, 30)...)
			b.StopTimer()
			e.removeAll(b)
			b.StartTimer()
		}
		reportLatencies(b, lat)
	})
}

// startPod runs a one-container pod and returns the time until the
// container runs.
func (e *env) startPod(b *testing.B, uid string) time.Duration {
	ctx := testCtx(b)
	start := time.Now()
	pod := &runtime.PodSpec{UID: uid, Namespace: "bench", Name: uid}
	if _, err := e.rt.RunPodSandbox(ctx, pod); err != nil {
		b.Fatal(err)
	}
	st, err := e.rt.StartContainer(ctx, uid, &runtime.ContainerSpec{Name: "c", Image: e.image, Command: []string{"sleep", "3600"}})
	if err != nil {
		b.Fatal(err)
	}
	if st.State != runtime.ContainerRunning {
		runtimetest.WaitContainer(b, e.rt, uid, "c", 30*time.Second, running)
	}
	return time.Since(start)
}

func (e *env) burst(b *testing.B, round, n int) []time.Duration {
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { lat[i] = e.startPod(b, fmt.Sprintf("burst-%d-%d", round, i)) })
	}
	wg.Wait()
	return lat
}

func (e *env) removeAll(b *testing.B) {
	ctx := testCtx(b)
	pods, err := e.rt.ListPods(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			if err := e.rt.RemovePod(ctx, p.UID); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// benchBare starts plain containerd containers from the same image:
// NewContainer, NewTask, Start.
func (e *env) benchBare(b *testing.B) []time.Duration {
	ctx := namespaces.WithNamespace(testCtx(b), e.cfg.Namespace)
	cl := e.rt.Client()
	img, err := cl.GetImage(ctx, e.image)
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		took, err := runtimetest.BareStart(ctx, cl, img, fmt.Sprintf("bare-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, took)
	}
	return lat
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.Logf("%s: n=%d p50=%v p99=%v max=%v", b.Name(), len(lat), pct(0.50), pct(0.99), lat[len(lat)-1])
}
