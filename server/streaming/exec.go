package streaming

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/minik-dev/minik/api"
)

// clientStreams is the client's end of an exec or attach session, over
// WebSocket or SPDY. Unused streams are nil.
type clientStreams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	resize         <-chan termSize // tty only
	// gone is closed when the client's connection closes.
	gone <-chan struct{}
	// finish reports the outcome to the client (a nil Status is success)
	// and closes the connection; abort closes it at once. Either may be
	// called more than once.
	finish func(st *metav1.Status)
	abort  func()
}

// serveExec serves pods/exec (or pods/attach) with the remote command
// protocols kubectl speaks: v5 and older over WebSocket, v4 to v2 over
// SPDY/3.1.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, attach bool) {
	sub := "exec"
	if attach {
		sub = "attach"
	}
	if !methodAllowed(w, r, sub, http.MethodGet, http.MethodPost) {
		return
	}
	req, err := execRequest(pod, r.URL.Query(), attach)
	if err != nil {
		writeStatus(w, err)
		return
	}
	node := pod.Spec.NodeName
	if !s.Connected(node) {
		writeStatus(w, tunnelError(node, ErrNodeNotConnected))
		return
	}
	var cs *clientStreams
	if wsstream.IsWebSocketRequest(r) {
		cs, err = upgradeWebSocket(w, r, req.Exec)
	} else {
		cs, err = upgradeSPDY(w, r, req.Exec)
	}
	if err != nil {
		// The upgrade answered the client already.
		s.log.Debug("exec upgrade failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return
	}
	defer cs.abort()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-cs.gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	sess, err := s.open(ctx, node, req)
	if err != nil {
		cs.finish(statusOf(tunnelError(node, err)))
		return
	}
	in := clientInput{stdin: cs.stdin, resize: cs.resize}
	res, err := sess.relay(ctx, in, cs.stdout, cs.stderr, cs.abort)
	if err != nil {
		cs.finish(statusOf(tunnelError(node, err)))
		return
	}
	cs.finish(exitStatus(res))
}

// execRequest validates an exec or attach request and builds the tunnel
// request.
func execRequest(pod *corev1.Pod, q url.Values, attach bool) (*api.TunnelRequest, error) {
	opts := &api.TunnelExecOptions{}
	for _, f := range []struct {
		name string
		v    *bool
	}{{"stdin", &opts.Stdin}, {"stdout", &opts.Stdout}, {"stderr", &opts.Stderr}, {"tty", &opts.Tty}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for %s: %v", v, f.name, err))
		}
		*f.v = b
	}
	if opts.Tty {
		opts.Stderr = false // a terminal merges stderr into stdout
	}
	if !opts.Stdin && !opts.Stdout && !opts.Stderr {
		return nil, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	kind := api.TunnelKind_TUNNEL_KIND_ATTACH
	if !attach {
		kind = api.TunnelKind_TUNNEL_KIND_EXEC
		opts.Command = q["command"]
		if len(opts.Command) == 0 {
			return nil, apierrors.NewBadRequest("you must specify at least 1 command")
		}
	}
	container, err := containerOf(pod, q.Get("container"))
	if err != nil {
		return nil, err
	}
	if _, err := nodeOf(pod); err != nil {
		return nil, err
	}
	return &api.TunnelRequest{
		Kind:      kind,
		Namespace: pod.Namespace, Pod: pod.Name, PodUid: string(pod.UID),
		Container: container,
		Exec:      opts,
	}, nil
}

// exitStatus is the Status that tells the client how a command ended:
// nil for exit code 0, NonZeroExitCode with an ExitCode cause otherwise.
func exitStatus(res *api.TunnelResult) *metav1.Status {
	if err := resultError(res); err != nil {
		return statusOf(err)
	}
	if res.GetExitCode() == 0 {
		return nil
	}
	code := strconv.Itoa(int(res.GetExitCode()))
	return &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusInternalServerError,
		Reason:  remotecommand.NonZeroExitCodeReason,
		Message: "command terminated with non-zero exit code: exit status " + code,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type: remotecommand.ExitCodeCauseType, Message: code,
		}}},
	}
}
