package pods

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// attachFake adds an Attacher to the Fake: it writes "out" and what stdin
// brings, upper-cased.
type attachFake struct {
	*runtimetest.Fake
	gotStdin bool
	err      error
}

func (f *attachFake) Attach(_ context.Context, uid, ctr string, opts runtime.AttachOptions) error {
	if _, err := f.PodStatus(context.Background(), uid); err != nil {
		return err
	}
	if f.err != nil {
		return f.err
	}
	f.gotStdin = opts.Stdin != nil
	io.WriteString(opts.Stdout, "out")
	if opts.Stdin != nil {
		in, _ := io.ReadAll(opts.Stdin)
		io.WriteString(opts.Stdout, strings.ToUpper(string(in)))
	}
	return nil
}

func TestAttach(t *testing.T) {
	e := newLogEnv(t, time.Now())
	af := &attachFake{Fake: e.fake}
	e.m.cfg.Runtime = af
	ctx := context.Background()
	for _, stdin := range []bool{false, true} {
		pod := e.pod.DeepCopy()
		pod.Spec.Containers[0].Stdin = stdin
		e.m.SetPods([]*corev1.Pod{pod})
		var out bytes.Buffer
		err := e.m.Attach(ctx, e.name, "c0", ExecStreams{Stdin: strings.NewReader("hi"), Stdout: &out})
		want := "out"
		if stdin {
			want = "outHI"
		}
		if err != nil || out.String() != want || af.gotStdin != stdin {
			t.Errorf("container stdin %v: Attach = %v, output %q, stdin passed %v; want nil, %q, %v", stdin, err, out.String(), af.gotStdin, want, stdin)
		}
	}
	af.err = runtime.ErrInvalid
	if err := e.m.Attach(ctx, e.name, "c0", ExecStreams{Stdin: strings.NewReader("x")}); !errors.Is(err, ErrNoStdin) {
		t.Errorf("Attach to a used stdinOnce = %v, want ErrNoStdin", err)
	}
	if err := e.m.Attach(ctx, types.NamespacedName{Namespace: "ns", Name: "x"}, "c0", ExecStreams{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Attach to an unknown pod = %v, want ErrNotFound", err)
	}
	e.m.cfg.Runtime = e.fake
	if err := e.m.Attach(ctx, e.name, "c0", ExecStreams{}); err == nil {
		t.Error("Attach with a runtime that cannot attach succeeded")
	}
}
