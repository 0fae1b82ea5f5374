package streaming

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"

	"github.com/minik-dev/minik/server/internal/proxyprefix"
)

// proxyTarget is what a pods/proxy path names.
type proxyTarget struct {
	scheme string // http or https
	port   int
	path   string // escaped, starting with "/"
}

// strippedHeaders are the client's credentials, which the pod must not
// see: the API server has already used them. Impersonate-* headers go too.
var strippedHeaders = []string{"Authorization", "Proxy-Authorization"}

// servePodProxy serves pods/[SCHEME:]NAME[:PORT]/proxy[/PATH]: any method,
// both directions streamed, upgrades passed through. The agent of the
// pod's node dials the pod's IP from the node's network.
func (s *Server) servePodProxy(w http.ResponseWriter, r *http.Request, pod *corev1.Pod) {
	t, err := parseProxyPath(r.URL, pod)
	if err != nil {
		writeStatus(w, err)
		return
	}
	node, err := nodeOf(pod)
	if err != nil {
		writeStatus(w, err)
		return
	}
	tr := s.podTransport(node, pod, t.port)
	defer tr.CloseIdleConnections()
	host := pod.Status.PodIP
	if host == "" {
		host = pod.Name
	}
	// As Kubernetes' proxy does, links to the pod's own pages in HTML it
	// serves, and redirects, are rewritten to go through the API.
	prefix := proxyprefix.From(r.Context())
	if prefix == "" {
		prefix = strings.TrimSuffix(r.URL.EscapedPath(), t.path)
		if t.path == "/" && !strings.HasSuffix(r.URL.EscapedPath(), "/") {
			prefix = r.URL.EscapedPath()
		}
	}
	kept := &keepError{rt: tr}
	rt := &proxy.Transport{PathPrepend: prefix, RoundTripper: kept}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = &url.URL{Scheme: t.scheme, Host: net.JoinHostPort(host, strconv.Itoa(t.port)), RawQuery: pr.In.URL.RawQuery}
			pr.Out.URL.Path, _ = url.PathUnescape(t.path)
			pr.Out.URL.RawPath = t.path
			pr.Out.Host = ""
			for _, h := range strippedHeaders {
				pr.Out.Header.Del(h)
			}
			for h := range pr.Out.Header {
				if strings.HasPrefix(h, "Impersonate-") {
					pr.Out.Header.Del(h)
				}
			}
			pr.SetXForwarded()
		},
		Transport:     rt,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			if kept.err != nil {
				err = kept.err // the tunnel's, before the rewriter wraps it
			}
			writeStatus(w, proxyError(pod.Name, err))
		},
	}
	rp.ServeHTTP(w, r)
}

// keepError is a round tripper that keeps the error of rt's round trip.
type keepError struct {
	rt  http.RoundTripper
	err error
}

func (k *keepError) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := k.rt.RoundTrip(r)
	k.err = err
	return resp, err
}

// podTransport reaches port of pod through node's tunnel, one session per
// request (no connection is kept).
func (s *Server) podTransport(node string, pod *corev1.Pod, port int) *http.Transport {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return s.dialPod(ctx, node, pod.Namespace, pod.Name, string(pod.UID), port, false)
	}
	return &http.Transport{
		DialContext: dial,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// As Kubernetes does, a pod's certificate is not verified: the
			// tunnel already authenticates the node the pod runs on.
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		},
		DisableKeepAlives: true,
	}
}

// proxyError is the Status of a failed proxy round trip: the agent's or
// the tunnel's Status when it says the pod is missing or the node
// unreachable, else 503 as Kubernetes answers.
func proxyError(pod string, err error) error {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code != 500 {
		return st.(error)
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach pod %s: %v", pod, err))
}

// parseProxyPath reads the target of .../pods/NAMESPEC/proxy[/PATH].
func parseProxyPath(u *url.URL, pod *corev1.Pod) (*proxyTarget, error) {
	p := u.EscapedPath()
	i := strings.Index(p, "/pods/")
	if i < 0 {
		return nil, apierrors.NewBadRequest("not a pod proxy path")
	}
	spec, rest, _ := strings.Cut(p[i+len("/pods/"):], "/")
	rest, ok := strings.CutPrefix(rest, "proxy")
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, apierrors.NewBadRequest("not a pod proxy path")
	}
	if rest == "" {
		rest = "/"
	}
	scheme, _, port, err := splitSchemeNamePort(spec)
	if err != nil {
		return nil, err
	}
	n, err := containerPort(pod, port, scheme)
	if err != nil {
		return nil, err
	}
	return &proxyTarget{scheme: scheme, port: n, path: rest}, nil
}

// splitSchemeNamePort splits [SCHEME:]NAME[:PORT] as Kubernetes does:
// "name", "name:port" and "scheme:name:port"; the scheme defaults to http.
func splitSchemeNamePort(spec string) (scheme, name, port string, err error) {
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		name, port = parts[0], parts[1]
	case 3:
		scheme, name, port = parts[0], parts[1], parts[2]
	}
	if scheme == "" {
		scheme = "http"
	}
	if len(parts) > 3 || name == "" || (scheme != "http" && scheme != "https") {
		return "", "", "", apierrors.NewBadRequest(fmt.Sprintf("invalid proxy target %q: want [http:|https:]NAME[:PORT]", spec))
	}
	return scheme, name, port, nil
}

// containerPort resolves a proxy port: a number, a container port's name,
// or (empty) the pod's first declared port, else the scheme's default.
func containerPort(pod *corev1.Pod, port, scheme string) (int, error) {
	if port == "" {
		for _, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				return int(c.Ports[0].ContainerPort), nil
			}
		}
		if scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 1 || n > 65535 {
			return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid port %q: must be between 1 and 65535, inclusive", port))
		}
		return n, nil
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == port {
				return int(cp.ContainerPort), nil
			}
		}
	}
	return 0, apierrors.NewBadRequest(fmt.Sprintf("pod %s has no port named %q", pod.Name, port))
}
