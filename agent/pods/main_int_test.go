//go:build integration

package pods

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
func TestMain(m *testing.M) { runtimetest.Main(m, "minik-pods-test") }

// intEnv is a containerd started for one test with a runtime on it.
type intEnv struct {
	rt        *runtime.Containerd
	cfg       runtime.Config
	dir       string
	imagesDir string // holds the busybox image as an OCI archive
}

func requireIntegration(t testing.TB) {
	if os.Getenv("MINIK_INTEGRATION") != "1" || os.Geteuid() != 0 {
		t.Skip("needs MINIK_INTEGRATION=1 and root")
	}
}

// newIntEnv starts containerd under a temporary directory, connects a
// runtime and imports the busybox image as testImage. Cleanup removes every
// pod, image and the namespace, then stops containerd.
func newIntEnv(t *testing.T) *intEnv {
	requireIntegration(t)
	dir, err := os.MkdirTemp("", "mkp")
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
	e := &intEnv{dir: dir, cfg: runtime.Config{
		Address: d.Address(), DataDir: filepath.Join(dir, "data"), Namespace: "minik-pods-test-" + filepath.Base(dir),
		CgroupParent: "/minik-pods-test/" + filepath.Base(dir), Logger: lg,
	}}
	if e.rt, err = runtime.New(ctx, e.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cleanup(t) })
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	imagesDir := filepath.Join(dir, "images")
	os.MkdirAll(imagesDir, 0o755)
	if _, err := runtimetest.WriteOCIArchive(imagesDir, testImage, img); err != nil {
		t.Fatal(err)
	}
	e.imagesDir = imagesDir
	return e
}

func (e *intEnv) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
