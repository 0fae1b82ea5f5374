package pods

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minik-dev/minik/runtime"
)

// probeState tracks the startup, readiness and liveness probes of one
// container attempt.
type probeState struct {
	attempt int
	// started is set once the startup probe passed (at once without one);
	// until then the other probes do not run and the container is not
	// ready.
	started bool
	ready   bool
	// Consecutive results and next run of each probe.
	startFail          int
	readyOK, readyFail int
	liveFail           int
	startNext          time.Time
	readyNext          time.Time
	liveNext           time.Time
}

// probe runs the due probes of a running container. A container failing
// its startup or liveness probe is stopped; the next sync restarts it as
// its restart policy says.
func (w *worker) probe(ctx context.Context, c *corev1.Container, rc *runtime.ContainerStatus, podIP string) {
	ps := w.probes[c.Name]
	if ps == nil || ps.attempt != rc.Attempt {
		ps = &probeState{attempt: rc.Attempt, started: c.StartupProbe == nil, ready: c.ReadinessProbe == nil}
		if p := c.StartupProbe; p != nil {
			ps.startNext = rc.StartedAt.Add(seconds(p.InitialDelaySeconds, 0))
		}
		if p := c.ReadinessProbe; p != nil {
			ps.readyNext = rc.StartedAt.Add(seconds(p.InitialDelaySeconds, 0))
		}
		if p := c.LivenessProbe; p != nil {
			ps.liveNext = rc.StartedAt.Add(seconds(p.InitialDelaySeconds, 0))
		}
		w.probes[c.Name] = ps
	}
	now := w.m.cfg.Now()
	if !ps.started && !w.startupProbe(ctx, c, ps, podIP, now) {
		return
	}
	if p := c.ReadinessProbe; p != nil && !now.Before(ps.readyNext) {
		ps.readyNext = now.Add(seconds(p.PeriodSeconds, 10))
		if err := w.runProbe(ctx, p, c, podIP); err == nil {
			ps.readyOK, ps.readyFail = ps.readyOK+1, 0
			ps.ready = ps.ready || ps.readyOK >= threshold(p.SuccessThreshold, 1)
		} else {
			w.event(c.Name, corev1.EventTypeWarning, EventUnhealthy, "Readiness probe failed: %v", err)
			ps.readyOK, ps.readyFail = 0, ps.readyFail+1
			ps.ready = ps.ready && ps.readyFail < threshold(p.FailureThreshold, 3)
		}
	}
	if p := c.LivenessProbe; p != nil && !now.Before(ps.liveNext) {
		ps.liveNext = now.Add(seconds(p.PeriodSeconds, 10))
		err := w.runProbe(ctx, p, c, podIP)
		if err == nil {
			ps.liveFail = 0
			return
		}
		w.event(c.Name, corev1.EventTypeWarning, EventUnhealthy, "Liveness probe failed: %v", err)
		if ps.liveFail++; ps.liveFail >= threshold(p.FailureThreshold, 3) {
			w.lg.Info("liveness probe failed, restarting container", "container", c.Name)
			w.event(c.Name, corev1.EventTypeNormal, EventKilling, "Container %s failed liveness probe, will be restarted", c.Name)
			ps.ready = false
			if err := w.stopContainer(ctx, c, podIP); err != nil {
				w.lg.Warn("stop unhealthy container", "container", c.Name, "err", err)
			}
		}
	}
}

// startupProbe runs c's startup probe when it is due and reports whether
// the container has now started. After failureThreshold failures in a row
// the container is stopped.
func (w *worker) startupProbe(ctx context.Context, c *corev1.Container, ps *probeState, podIP string, now time.Time) bool {
	p := c.StartupProbe
	if now.Before(ps.startNext) {
		return false
	}
	ps.startNext = now.Add(seconds(p.PeriodSeconds, 10))
	err := w.runProbe(ctx, p, c, podIP)
	if err == nil {
		ps.started = true
		return true
	}
	w.event(c.Name, corev1.EventTypeWarning, EventUnhealthy, "Startup probe failed: %v", err)
	if ps.startFail++; ps.startFail >= threshold(p.FailureThreshold, 3) {
		w.lg.Info("startup probe failed, restarting container", "container", c.Name)
		w.event(c.Name, corev1.EventTypeNormal, EventKilling, "Container %s failed startup probe, will be restarted", c.Name)
		if err := w.stopContainer(ctx, c, podIP); err != nil {
			w.lg.Warn("stop container that did not start", "container", c.Name, "err", err)
		}
	}
	return false
}

func seconds(n int32, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

func threshold(n, def int32) int {
	if n <= 0 {
		return int(def)
	}
	return int(n)
}

// unready lists the running containers whose startup or readiness probe
// has not passed, and unstarted those whose startup probe has not.
// A container with a startup or readiness probe that has not been probed
// yet is neither.
func (w *worker) unready() (unready, unstarted map[string]bool) {
	unready, unstarted = map[string]bool{}, map[string]bool{}
	for _, list := range [][]corev1.Container{w.pod.Spec.InitContainers, w.pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			ps := w.probes[c.Name]
			started := c.StartupProbe == nil
			ready := started && c.ReadinessProbe == nil
			if ps != nil {
				started, ready = ps.started, ps.started && ps.ready
			}
			unready[c.Name], unstarted[c.Name] = !ready, !started
		}
	}
	return unready, unstarted
}

// runProbe runs one probe and returns why it failed.
func (w *worker) runProbe(ctx context.Context, p *corev1.Probe, c *corev1.Container, podIP string) error {
	ctx, cancel := context.WithTimeout(ctx, seconds(p.TimeoutSeconds, 1))
	defer cancel()
	var err error
	switch {
	case p.Exec != nil:
		err = w.execProbe(ctx, c.Name, p.Exec.Command)
	case p.HTTPGet != nil:
		err = httpProbe(ctx, p.HTTPGet, c, podIP)
	case p.TCPSocket != nil:
		err = tcpProbe(ctx, p.TCPSocket, c, podIP)
	case p.GRPC != nil:
		err = grpcProbe(ctx, p.GRPC, podIP)
	}
	if err != nil {
		w.lg.Debug("probe failed", "container", c.Name, "err", err)
	}
	return err
}

func (w *worker) execProbe(ctx context.Context, ctr string, cmd []string) error {
	return w.execIn(ctx, ctr, cmd, io.Discard)
}

// execIn runs cmd in container ctr, its output to out, and fails unless
// it exits with 0.
func (w *worker) execIn(ctx context.Context, ctr string, cmd []string, out io.Writer) error {
	ex, ok := w.m.cfg.Runtime.(runtime.Execer)
	if !ok {
		return errors.New("the runtime cannot exec")
	}
	code, err := ex.Exec(ctx, string(w.uid), ctr, runtime.ExecOptions{Cmd: cmd, Stdout: out, Stderr: out})
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	return err
}

// probeClient does not verify certificates, as the kubelet does not.
var probeClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
	DisableKeepAlives: true,
}}

func httpProbe(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) error {
	port, err := probePort(g.Port, c)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = podIP
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + g.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func tcpProbe(ctx context.Context, s *corev1.TCPSocketAction, c *corev1.Container, podIP string) error {
	port, err := probePort(s.Port, c)
	if err != nil {
		return err
	}
	host := s.Host
	if host == "" {
		host = podIP
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

// probePort resolves a port number or the name of a container port.
func probePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q: no such container port", p.StrVal)
}
