package pods

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

// ErrNoStdin means an attach session asked for the stdin of a container
// whose spec does not keep it open (stdin: false, or stdinOnce and used).
var ErrNoStdin = errors.New("pods: the container's stdin is not open")

// Attach connects streams to the main process of a running container of a
// pod on this node until ctx ends or the process exits; it implements
// tunnel.Attacher and needs a Runtime that implements runtime.Attacher.
// Only a container with stdin: true takes stdin; without it, a session
// asking for stdin gets the container's output only, as the kubelet does.
func (m *Manager) Attach(ctx context.Context, pod types.NamespacedName, container string, streams ExecStreams) error {
	p, name, err := m.container(pod, container)
	if err != nil {
		return err
	}
	at, ok := m.cfg.Runtime.(runtime.Attacher)
	if !ok {
		return errors.New("pods: the runtime cannot attach")
	}
	opts := runtime.AttachOptions{Stdout: streams.Stdout, Stderr: streams.Stderr}
	if streams.Stdin != nil && containerStdin(slices.Concat(p.Spec.Containers, ephemeralContainers(p)), name) {
		opts.Stdin = streams.Stdin
	}
	if streams.Resize != nil {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		opts.Resize = forwardSizes(ctx, streams.Resize)
	}
	err = at.Attach(ctx, string(p.UID), name, opts)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		return fmt.Errorf("container %q of pod %q is not running: %w", name, pod, ErrNotFound)
	case errors.Is(err, runtime.ErrInvalid):
		return fmt.Errorf("container %q of pod %q: %w", name, pod, ErrNoStdin)
	}
	return err
}

// containerStdin reports whether the named container keeps stdin open.
func containerStdin(cs []corev1.Container, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return c.Stdin
		}
	}
	return false
}
