//go:build integration

package runtime_test

import (
	"testing"
	"time"

	"github.com/minik-dev/minik/runtime"
)

func TestIntegrationSmoke(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	pod := &runtime.PodSpec{UID: "smoke-1", Namespace: "default", Name: "smoke"}
	st, err := e.rt.RunPodSandbox(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sandbox %+v", st)
	cs, err := e.rt.StartContainer(ctx, pod.UID, &runtime.ContainerSpec{Name: "c", Image: e.image, Command: []string{"sh", "-c", "echo hi; hostname; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("container %+v", cs)
	time.Sleep(time.Second)
	st, err = e.rt.PodStatus(ctx, pod.UID)
	t.Logf("status %+v %v", st, err)
}
