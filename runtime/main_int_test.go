//go:build integration

package runtime_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// TestMain lets the test binary serve as the sandboxes' pause process.
func TestMain(m *testing.M) { runtimetest.Main(m, "minik-test") }

// env is a containerd started for one test with a runtime on it.
type env struct {
	rt    *runtime.Containerd
	d     *runtime.Daemon
	dir   string
	image string
	cfg   runtime.Config
}

func requireIntegration(t testing.TB) {
	if os.Getenv("MINIK_INTEGRATION") != "1" || os.Geteuid() != 0 {
		t.Skip("needs MINIK_INTEGRATION=1 and root")
	}
}

// newEnv starts containerd under a temporary directory, connects a runtime
// and imports the busybox image. Cleanup removes every pod, image and the
// namespace, then stops containerd.
func newEnv(t testing.TB) *env {
	requireIntegration(t)
	dir, err := os.MkdirTemp("", "mk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	d, err := runtime.StartContainerd(ctx, runtime.DaemonConfig{Dir: dir, Logger: lg})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.Done():
		case <-time.After(20 * time.Second):
			t.Error("containerd did not stop")
		}
	})
	ns := "minik-test-" + filepath.Base(dir)
	cfg := runtime.Config{
		Address: d.Address(), DataDir: filepath.Join(dir, "data"), Namespace: ns,
		CgroupParent: "/minik-test/" + filepath.Base(dir), Logger: lg,
	}
	rt, err := runtime.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{rt: rt, d: d, dir: dir, cfg: cfg}
	t.Cleanup(func() { e.cleanup(t) })
	e.image = importBusybox(t, rt, dir)
	return e
}

func importBusybox(t testing.TB, rt *runtime.Containerd, dir string) string {
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	path, err := runtimetest.WriteOCIArchive(dir, runtimetest.BusyboxRef, img)
	if err != nil {
		t.Fatal(err)
	}
	names, err := rt.ImportTar(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != runtimetest.BusyboxRef {
		t.Fatalf("ImportTar = %q, want [%q]", names, runtimetest.BusyboxRef)
	}
	return names[0]
}

func (e *env) cleanup(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, err := e.rt.ListPods(ctx)
	if err != nil {
		t.Errorf("cleanup: ListPods: %v", err)
	}
	for _, p := range pods {
		if err := e.rt.RemovePod(ctx, p.UID); err != nil {
			t.Errorf("cleanup: RemovePod(%s): %v", p.UID, err)
		}
	}
	if err := e.rt.GC(ctx, func(string) bool { return false }); err != nil {
		t.Errorf("cleanup: GC: %v", err)
	}
	cl := e.rt.Client()
	nctx := namespaces.WithNamespace(ctx, e.cfg.Namespace)
	imgs, _ := cl.ImageService().List(nctx)
	for _, img := range imgs {
		cl.ImageService().Delete(nctx, img.Name)
	}
	if err := cl.NamespaceService().Delete(nctx, e.cfg.Namespace); err != nil {
		t.Logf("cleanup: delete namespace: %v", err)
	}
	e.rt.RemoveCgroupParent()
	if err := e.rt.Close(); err != nil {
		t.Errorf("cleanup: Close: %v", err)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// reconnect replaces the runtime with a new one on the same containerd,
// as an agent restart does.
func (e *env) reconnect(t testing.TB, net runtime.NetworkSetup) {
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	e.cfg.Network = net
	rt, err := runtime.New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
}
