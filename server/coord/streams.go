package coord

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/pki"
)

// forwardedHeader marks a pod stream request one server forwarded to
// another; it is not forwarded again.
const forwardedHeader = "X-Minik-Forwarded-By"

// forwardConnectTimeout bounds connecting to another server, TCP and TLS
// each: a holder that went away without closing its port (its record
// lasts until its lease expires) must not hold a log or exec request
// forever.
var forwardConnectTimeout = 5 * time.Second

// Holders knows which server a node is connected to.
type Holders interface {
	Holder(node string) (server string, ok bool)
}

// LocalStreams is the streaming server of this process.
type LocalStreams interface {
	apiserver.PodStreamer
	apiserver.PodDialer
	Connected(node string) bool
}

// PodStreamRouter serves a pod's log, exec and attach here when its node
// holds a tunnel to this server, and otherwise forwards the request to
// the server the node is connected to. The request has been
// authenticated and authorized here; the forward authenticates as the
// cluster admin (the admin token every server shares), as an API server
// does towards its kubelets.
type PodStreamRouter struct {
	local   LocalStreams
	holders Holders
	self    string // this server's advertised host:port
	proxy   *httputil.ReverseProxy
	lg      *slog.Logger
}

// NewPodStreamRouter returns the router of the server at self (its
// advertised host:port), which forwards with authority's admin token.
func NewPodStreamRouter(local LocalStreams, h Holders, self string, authority *pki.Authority, lg *slog.Logger) *PodStreamRouter {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: forwardConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: forwardConnectTimeout,
		TLSClientConfig:     &tls.Config{RootCAs: authority.ClientCAPool(), MinVersion: tls.VersionTLS12},
		// Upgrades (exec, attach) need HTTP/1.1.
		ForceAttemptHTTP2: false,
	}
	adminToken := authority.AdminToken()
	p := &PodStreamRouter{local: local, holders: h, self: self, lg: lg.With("component", "stream-router")}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.SetURL(target)
			pr.Out.URL.Path, pr.Out.URL.RawPath = pr.In.URL.Path, pr.In.URL.RawPath
			pr.Out.Header.Set("Authorization", "Bearer "+adminToken)
			pr.Out.Header.Set(forwardedHeader, self)
		},
		Transport:     tr,
		FlushInterval: -1, // logs stream as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.lg.Warn("forwarding a pod stream", "to", r.Context().Value(targetKey{}), "err", err)
			writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("forwarding to server %s: %v", r.Context().Value(targetKey{}).(*url.URL).Host, err)))
		},
	}
	return p
}

type targetKey struct{}

// ServePodSubresource implements apiserver.PodStreamer.
func (p *PodStreamRouter) ServePodSubresource(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, sub string) {
	node := pod.Spec.NodeName
	if node == "" || p.local.Connected(node) || r.Header.Get(forwardedHeader) != "" {
		p.local.ServePodSubresource(w, r, pod, sub)
		return
	}
	holder, ok := p.holders.Holder(node)
	if !ok || holder == p.self {
		p.local.ServePodSubresource(w, r, pod, sub)
		return
	}
	if _, _, err := net.SplitHostPort(holder); err != nil {
		p.local.ServePodSubresource(w, r, pod, sub)
		return
	}
	target := &url.URL{Scheme: "https", Host: holder}
	p.lg.Debug("forwarding a pod stream", "pod", pod.Namespace+"/"+pod.Name, "node", node, "to", holder)
	p.proxy.ServeHTTP(w, r.WithContext(contextWithTarget(r, target)))
}

// DialPod implements apiserver.PodDialer for pods whose node holds a
// tunnel to this server; a connection through another server is not
// offered (the request to a webhook behind such a pod fails, and the
// webhook's failurePolicy decides).
func (p *PodStreamRouter) DialPod(ctx context.Context, pod *corev1.Pod, port int) (net.Conn, error) {
	node := pod.Spec.NodeName
	if node == "" || p.local.Connected(node) {
		return p.local.DialPod(ctx, pod, port)
	}
	if holder, ok := p.holders.Holder(node); !ok || holder == p.self {
		return p.local.DialPod(ctx, pod, port)
	}
	return nil, fmt.Errorf("node %q of pod %q is connected to another server", node, pod.Name)
}

func contextWithTarget(r *http.Request, target *url.URL) context.Context {
	return context.WithValue(r.Context(), targetKey{}, target)
}

// writeStatus answers with err's Status as JSON.
func writeStatus(w http.ResponseWriter, err apierrors.APIStatus) {
	st := err.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	json.NewEncoder(w).Encode(st)
}
