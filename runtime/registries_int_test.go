//go:build integration

package runtime_test

import (
	"fmt"
	"testing"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// TestIntegrationRegistryMirror pulls an image named after a registry that
// does not exist through a mirror listed after a dead endpoint.
func TestIntegrationRegistryMirror(t *testing.T) {
	e := newEnv(t)
	reg := runtimetest.NewRegistry(t)
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "mirrored/busybox:1", img)
	regs, err := runtime.ParseRegistries(fmt.Appendf(nil,
		"mirrors:\n  unreachable.invalid:\n    endpoint: [\"http://127.0.0.1:1\", \"http://%s\"]\n", reg.Host))
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Registries = regs
	rt, err := runtime.New(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ref := "unreachable.invalid/mirrored/busybox:1"
	if err := rt.Pull(testCtx(t), ref, runtime.PullAlways); err != nil {
		t.Fatalf("Pull(%q) through the mirror = %v", ref, err)
	}
	if err := rt.Pull(testCtx(t), ref, runtime.PullNever); err != nil {
		t.Errorf("Pull(%q, Never) after the pull = %v", ref, err)
	}
	if err := e.rt.Pull(testCtx(t), "unreachable.invalid/mirrored/busybox:2", runtime.PullAlways); err == nil {
		t.Errorf("Pull without mirrors succeeded, want an error from unreachable.invalid")
	}
}
