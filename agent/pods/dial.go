package pods

import (
	"context"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"strconv"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
)

// DialPod connects to a TCP port of a running pod on this node: on the
// pod's IP from the node's network (what the API server's proxy reaches),
// or, when loopback, on 127.0.0.1 inside the pod's network namespace (what
// port forwarding reaches, so a server bound to localhost is reachable).
// ErrNotFound (wrapped) when the pod is not desired here or not running.
func (m *Manager) DialPod(ctx context.Context, pod types.NamespacedName, port int, loopback bool) (net.Conn, error) {
	p, err := m.lookup(pod)
	if err != nil {
		return nil, err
	}
	rs, err := m.cfg.Runtime.PodStatus(ctx, string(p.UID))
	if err != nil {
		return nil, fmt.Errorf("pod %q is not running: %w", pod, ErrNotFound)
	}
	var d net.Dialer
	if !loopback {
		if rs.IP == "" {
			return nil, fmt.Errorf("pod %q has no IP address: %w", pod, ErrNotFound)
		}
		return d.DialContext(ctx, "tcp", net.JoinHostPort(rs.IP, strconv.Itoa(port)))
	}
	if rs.NetNSPath == "" {
		return nil, fmt.Errorf("pod %q has no network namespace: %w", pod, ErrNotFound)
	}
	return dialInNetNS(ctx, rs.NetNSPath, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// dialInNetNS dials addr from inside the network namespace at path. The
// socket is created while the (locked) thread is in the namespace and
// keeps belonging to it; the thread then returns to its own namespace, or
// stays locked (and is discarded with the goroutine) if it cannot.
func dialInNetNS(ctx context.Context, path, addr string) (net.Conn, error) {
	target, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pod network namespace: %w", err)
	}
	defer target.Close()
	type result struct {
		c   net.Conn
		err error
	}
	// A goroutine of its own: a thread that fails to return is discarded
	// with it rather than with the caller's.
	resc := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			goruntime.UnlockOSThread()
			resc <- result{nil, err}
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			resc <- result{nil, fmt.Errorf("enter pod network namespace: %w", err)}
			return
		}
		var d net.Dialer
		c, dialErr := d.DialContext(ctx, "tcp", addr)
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			if c != nil {
				c.Close()
			}
			resc <- result{nil, fmt.Errorf("leave pod network namespace: %w", err)}
			return
		}
		goruntime.UnlockOSThread()
		resc <- result{c, dialErr}
	}()
	r := <-resc
	return r.c, r.err
}
