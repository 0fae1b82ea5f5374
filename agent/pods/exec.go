package pods

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

// Exec runs cmd in a running container of a pod on this node; see
// Streamer. It needs a Runtime that implements runtime.Execer.
func (m *Manager) Exec(ctx context.Context, pod types.NamespacedName, container string, cmd []string, streams ExecStreams) (int, error) {
	p, name, err := m.container(pod, container)
	if err != nil {
		return 0, err
	}
	ex, ok := m.cfg.Runtime.(runtime.Execer)
	if !ok {
		return 0, errors.New("pods: the runtime cannot exec")
	}
	opts := runtime.ExecOptions{
		Cmd: cmd, Stdin: streams.Stdin, Stdout: streams.Stdout, Stderr: streams.Stderr, TTY: streams.TTY,
	}
	if streams.Resize != nil {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		opts.Resize = forwardSizes(ctx, streams.Resize)
	}
	code, err := ex.Exec(ctx, string(p.UID), name, opts)
	if errors.Is(err, runtime.ErrNotFound) {
		return 0, fmt.Errorf("container %q of pod %q is not running: %w", name, pod, ErrNotFound)
	}
	return code, err
}

// forwardSizes converts terminal sizes until in closes or ctx ends, then
// closes the returned channel.
func forwardSizes(ctx context.Context, in <-chan TermSize) <-chan runtime.TermSize {
	out := make(chan runtime.TermSize)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- runtime.TermSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// container finds a desired pod and one of its containers; an empty name
// means the pod's only (or default-annotated) container.
func (m *Manager) container(name types.NamespacedName, container string) (*corev1.Pod, string, error) {
	p, err := m.lookup(name)
	if err != nil {
		return nil, "", err
	}
	if container == "" {
		if d := p.Annotations["kubectl.kubernetes.io/default-container"]; d != "" {
			container = d
		} else if len(p.Spec.Containers) == 1 {
			container = p.Spec.Containers[0].Name
		} else {
			return nil, "", fmt.Errorf("pod %q has %d containers: a container name must be given: %w", name, len(p.Spec.Containers), ErrNotFound)
		}
	}
	for _, list := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers, ephemeralContainers(p)} {
		for _, c := range list {
			if c.Name == container {
				return p, container, nil
			}
		}
	}
	return nil, "", fmt.Errorf("container %q in pod %q: %w", container, name, ErrNotFound)
}

// ImportImages imports every *.tar file (OCI or docker archive) in dir
// into the runtime, which must implement runtime.Images. A missing
// directory holds no images. Errors of single files are joined; the
// others are still imported.
func (m *Manager) ImportImages(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil || len(files) == 0 {
		return err
	}
	imp, ok := m.cfg.Runtime.(runtime.Images)
	if !ok {
		return errors.New("pods: the runtime cannot import images")
	}
	var errs []error
	for _, f := range files {
		names, err := imp.ImportTar(ctx, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.lg.Info("imported images", "file", f, "images", names)
	}
	return errors.Join(errs...)
}
