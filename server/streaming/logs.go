package streaming

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/minik-dev/minik/api"
)

// followHeaderDelay is how long a follow request waits for the first
// output before sending its 200 headers: errors the node finds at once
// still become a proper Status, and a quiet log still answers promptly.
const followHeaderDelay = time.Second

// serveLogs serves GET pods/NAME/log as chunked text/plain, or over a
// WebSocket when the client asks for one.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request, pod *corev1.Pod) {
	if !methodAllowed(w, r, "log", http.MethodGet) {
		return
	}
	req, err := logRequest(pod, r.URL.Query())
	if err != nil {
		writeStatus(w, err)
		return
	}
	node := pod.Spec.NodeName
	sess, err := s.open(r.Context(), node, req)
	if err != nil {
		writeStatus(w, tunnelError(node, err))
		return
	}
	if wsstream.IsWebSocketRequest(r) {
		s.serveLogsWebSocket(w, r, sess, node, req.Logs.Follow)
		return
	}
	lw := &logWriter{w: w, rc: http.NewResponseController(w)}
	if req.Logs.Follow {
		t := time.AfterFunc(followHeaderDelay, func() { lw.commit() })
		defer t.Stop()
	}
	res, err := sess.relay(r.Context(), clientInput{}, lw, lw, nil)
	switch {
	case err != nil:
		err = tunnelError(node, err)
	default:
		err = resultError(res)
	}
	if err != nil && !lw.fail(err) {
		s.log.Debug("log stream ended", "node", node, "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	lw.commit()
}

// logRequest validates a log request and builds the tunnel request.
func logRequest(pod *corev1.Pod, q url.Values) (*api.TunnelRequest, error) {
	opts, err := parseLogOptions(q)
	if err != nil {
		return nil, err
	}
	container, err := containerOf(pod, q.Get("container"))
	if err != nil {
		return nil, err
	}
	if _, err := nodeOf(pod); err != nil {
		return nil, err
	}
	if err := logsAvailable(pod, container, opts.Previous); err != nil {
		return nil, err
	}
	return &api.TunnelRequest{
		Kind:      api.TunnelKind_TUNNEL_KIND_LOGS,
		Namespace: pod.Namespace, Pod: pod.Name, PodUid: string(pod.UID),
		Container: container,
		Logs:      opts,
	}, nil
}

// parseLogOptions reads PodLogOptions from a query, with the API's rules.
func parseLogOptions(q url.Values) (*api.TunnelLogOptions, error) {
	var errs field.ErrorList
	opts := &api.TunnelLogOptions{}
	var err error
	boolean := func(name string) bool {
		v := q.Get(name)
		if v == "" {
			return false
		}
		b, perr := strconv.ParseBool(v)
		if perr != nil && err == nil {
			err = apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for %s: %v", v, name, perr))
		}
		return b
	}
	integer := func(name string, min int64) *int64 {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			if err == nil {
				err = apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for %s: %v", v, name, perr))
			}
			return nil
		}
		if n < min {
			errs = append(errs, field.Invalid(field.NewPath(name), n, fmt.Sprintf("must be greater than or equal to %d", min)))
		}
		return &n
	}
	opts.Follow = boolean("follow")
	opts.Previous = boolean("previous")
	opts.Timestamps = boolean("timestamps")
	opts.TailLines = integer("tailLines", 0)
	opts.SinceSeconds = integer("sinceSeconds", 1)
	opts.LimitBytes = integer("limitBytes", 1)
	if v := q.Get("sinceTime"); v != "" {
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil && err == nil {
			err = apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for sinceTime: %v", v, perr))
		}
		ns := t.UnixNano()
		opts.SinceTimeUnixNano = &ns
		if opts.SinceSeconds != nil {
			errs = append(errs, field.Forbidden(field.NewPath("sinceTime"), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
		}
	}
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, "", errs)
	}
	return opts, nil
}

// logsAvailable refuses, as Kubernetes does, logs of a container that has
// not started yet, and previous logs of one that never terminated.
func logsAvailable(pod *corev1.Pod, container string, previous bool) error {
	var st *corev1.ContainerStatus
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				st = &list[i]
			}
		}
	}
	if st == nil {
		return nil // the node knows better than a status not yet reported
	}
	if previous {
		if st.LastTerminationState.Terminated == nil {
			return apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod.Name))
		}
		return nil
	}
	if w := st.State.Waiting; w != nil && st.LastTerminationState.Terminated == nil && st.RestartCount == 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, pod.Name, w.Reason))
	}
	return nil
}

// logWriter sends log output to the client, flushing every write. Its
// headers go out with the first output, on commit, or as an error Status
// from fail, whichever comes first. Safe for concurrent use.
type logWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	rc        *http.ResponseController
	committed bool // guarded by mu
}

func (l *logWriter) commitLocked() {
	if l.committed {
		return
	}
	l.committed = true
	h := l.w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("X-Content-Type-Options", "nosniff")
	l.w.WriteHeader(http.StatusOK)
	l.rc.Flush()
}

// commit sends the 200 headers if nothing was sent yet.
func (l *logWriter) commit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commitLocked()
}

// fail answers with err's Status if no output was sent yet, and reports
// whether it did.
func (l *logWriter) fail(err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.committed {
		return false
	}
	l.committed = true
	writeStatus(l.w, err)
	return true
}

// Write sends p to the client at once.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commitLocked()
	n, err := l.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, l.rc.Flush()
}
