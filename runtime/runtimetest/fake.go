package runtimetest

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minik-dev/minik/runtime"
)

// Fake is an in-memory runtime. A container whose command line contains
// "exit N" exits at once with code N; any other runs until stopped, and then
// exits with 137 (143 when stopped with a grace period). Images listed with
// AddImage are present; pulls of others fail unless Pullable lists them.
type Fake struct {
	mu       sync.Mutex // guards all fields
	pods     map[string]*fakePod
	images   map[string]bool
	pullable map[string]bool
	now      func() time.Time
}

type fakePod struct {
	status     runtime.PodStatus
	containers map[string]*runtime.ContainerStatus // latest attempt by name
	spec       *runtime.PodSpec
	specs      map[string]*runtime.ContainerSpec // of the latest attempt, by name
}

var (
	_ runtime.Runtime = (*Fake)(nil)
	_ runtime.Images  = (*Fake)(nil)
	_ runtime.Resizer = (*Fake)(nil)
)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{pods: map[string]*fakePod{}, images: map[string]bool{}, pullable: map[string]bool{}, now: time.Now}
}

// AddImage makes ref present.
func (f *Fake) AddImage(ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[normalize(ref)] = true
}

// Pullable lets ref be pulled.
func (f *Fake) Pullable(ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pullable[normalize(ref)] = true
}

func normalize(ref string) string {
	if n, err := runtime.NormalizeImage(ref); err == nil {
		return n
	}
	return ref
}

// RunPodSandbox implements runtime.Pods.
func (f *Fake) RunPodSandbox(_ context.Context, pod *runtime.PodSpec) (*runtime.PodStatus, error) {
	if pod.UID == "" || pod.Name == "" || pod.Namespace == "" {
		return nil, fmt.Errorf("pod %q: %w", pod.UID, runtime.ErrInvalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[pod.UID]
	if !ok || p.status.State != runtime.SandboxReady {
		p = &fakePod{containers: map[string]*runtime.ContainerStatus{}, specs: map[string]*runtime.ContainerSpec{}, spec: pod}
		if old, ok := f.pods[pod.UID]; ok {
			p.containers, p.specs = old.containers, old.specs
			f.stopLocked(old, 0)
		}
		p.status = runtime.PodStatus{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name,
			State: runtime.SandboxReady, CreatedAt: f.now(), NetNSPath: "/proc/1/ns/net"}
		f.pods[pod.UID] = p
	}
	return p.snapshot(), nil
}

func (p *fakePod) snapshot() *runtime.PodStatus {
	st := p.status
	st.Containers = nil
	for _, c := range p.containers {
		st.Containers = append(st.Containers, *c)
	}
	sort.Slice(st.Containers, func(i, j int) bool { return st.Containers[i].Name < st.Containers[j].Name })
	return &st
}

var exitRE = regexp.MustCompile(`\bexit (\d+)`)

// StartContainer implements runtime.Containers.
func (f *Fake) StartContainer(_ context.Context, podUID string, spec *runtime.ContainerSpec) (*runtime.ContainerStatus, error) {
	if spec.Name == "" || spec.Image == "" {
		return nil, fmt.Errorf("container %q: %w", spec.Name, runtime.ErrInvalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[podUID]
	if !ok {
		return nil, fmt.Errorf("pod %q: %w", podUID, runtime.ErrNotFound)
	}
	if p.status.State != runtime.SandboxReady {
		return nil, fmt.Errorf("pod %q: %w", podUID, runtime.ErrSandboxNotReady)
	}
	attempt := 0
	if old := p.containers[spec.Name]; old != nil {
		if old.State == runtime.ContainerRunning {
			st := *old
			return &st, nil
		}
		attempt = old.Attempt + 1
	}
	if err := f.ensureImageLocked(spec.Image, spec.PullPolicy); err != nil {
		return nil, err
	}
	now := f.now()
	c := &runtime.ContainerStatus{Name: spec.Name, ID: fmt.Sprintf("%s-%s-%d", podUID, spec.Name, attempt),
		Image: spec.Image, Attempt: attempt, State: runtime.ContainerRunning, CreatedAt: now, StartedAt: now,
		LogPath: fmt.Sprintf("pods/%s_%s_%s/%s/%d.log", p.status.Namespace, p.status.Name, podUID, spec.Name, attempt)}
	if m := exitRE.FindStringSubmatch(strings.Join(append(spec.Command, spec.Args...), " ")); m != nil {
		code, _ := strconv.Atoi(m[1])
		exit(c, code, now)
	}
	p.containers[spec.Name] = c
	p.specs[spec.Name] = spec
	st := *c
	return &st, nil
}

// ResizeContainer implements runtime.Resizer: the resources r sets replace
// those of the spec ContainerSpec returns.
func (f *Fake) ResizeContainer(_ context.Context, podUID, name string, r runtime.Resources) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[podUID]
	if !ok || p.containers[name] == nil {
		return fmt.Errorf("container %q of pod %q: %w", name, podUID, runtime.ErrNotFound)
	}
	if p.containers[name].State != runtime.ContainerRunning {
		return fmt.Errorf("container %q of pod %q is not running: %w", name, podUID, runtime.ErrInvalid)
	}
	spec := *p.specs[name]
	cur := &spec.Resources
	for _, v := range []struct{ dst, src *int64 }{
		{&cur.CPURequestMilli, &r.CPURequestMilli}, {&cur.CPULimitMilli, &r.CPULimitMilli}, {&cur.MemoryLimitBytes, &r.MemoryLimitBytes},
	} {
		if *v.src != 0 {
			*v.dst = *v.src
		}
	}
	p.specs[name] = &spec
	return nil
}

// PodSpec returns the spec the pod's sandbox was last run with, or nil.
func (f *Fake) PodSpec(podUID string) *runtime.PodSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.pods[podUID]; p != nil {
		return p.spec
	}
	return nil
}

// ContainerSpec returns the spec the container's latest attempt was started
// with, or nil.
func (f *Fake) ContainerSpec(podUID, name string) *runtime.ContainerSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.pods[podUID]; p != nil {
		return p.specs[name]
	}
	return nil
}

func (f *Fake) ensureImageLocked(ref string, policy runtime.PullPolicy) error {
	name := normalize(ref)
	present := f.images[name]
	switch {
	case policy == runtime.PullNever && !present:
		return fmt.Errorf("image %q: %w", name, runtime.ErrImageNeverPull)
	case policy != runtime.PullAlways && present:
		return nil
	case !f.pullable[name]:
		return fmt.Errorf("pull %q: %w: not found", name, runtime.ErrImagePull)
	}
	f.images[name] = true
	return nil
}

func exit(c *runtime.ContainerStatus, code int, at time.Time) {
	c.State, c.ExitCode, c.FinishedAt, c.Reason = runtime.ContainerExited, code, at, "Completed"
	if code != 0 {
		c.Reason = "Error"
	}
}

// StopContainer implements runtime.Containers.
func (f *Fake) StopContainer(_ context.Context, podUID, name string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[podUID]
	if !ok || p.containers[name] == nil {
		return fmt.Errorf("container %q of pod %q: %w", name, podUID, runtime.ErrNotFound)
	}
	f.stopContainerLocked(p.containers[name], grace)
	return nil
}

func (f *Fake) stopContainerLocked(c *runtime.ContainerStatus, grace time.Duration) {
	if c.State != runtime.ContainerRunning {
		return
	}
	code := 137
	if grace > 0 {
		code = 143
	}
	exit(c, code, f.now())
}

func (f *Fake) stopLocked(p *fakePod, grace time.Duration) {
	for _, c := range p.containers {
		f.stopContainerLocked(c, grace)
	}
	p.status.State, p.status.NetNSPath = runtime.SandboxNotReady, ""
}

// StopPod implements runtime.Pods.
func (f *Fake) StopPod(_ context.Context, podUID string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[podUID]
	if !ok {
		return fmt.Errorf("pod %q: %w", podUID, runtime.ErrNotFound)
	}
	f.stopLocked(p, grace)
	return nil
}

// RemovePod implements runtime.Pods.
func (f *Fake) RemovePod(_ context.Context, podUID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pods, podUID)
	return nil
}

// PodStatus implements runtime.Pods.
func (f *Fake) PodStatus(_ context.Context, podUID string) (*runtime.PodStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[podUID]
	if !ok {
		return nil, fmt.Errorf("pod %q: %w", podUID, runtime.ErrNotFound)
	}
	return p.snapshot(), nil
}

// ListPods implements runtime.Pods.
func (f *Fake) ListPods(context.Context) ([]*runtime.PodStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*runtime.PodStatus, 0, len(f.pods))
	for _, p := range f.pods {
		out = append(out, p.snapshot())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ImportTar implements runtime.Images; the Fake reads nothing and imports
// no image.
func (f *Fake) ImportTar(context.Context, string) ([]string, error) { return nil, nil }

// Pull implements runtime.Images.
func (f *Fake) Pull(_ context.Context, ref string, policy runtime.PullPolicy, _ ...runtime.RegistryAuth) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ensureImageLocked(ref, policy)
}
