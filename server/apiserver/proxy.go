package apiserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/internal/proxyprefix"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// proxyRoute routes the connecting subresources: pods/proxy,
// services/proxy and nodes/proxy (with a path of their own after
// "proxy"), and pods/portforward. Their names may carry a scheme and a
// port ([SCHEME:]NAME[:PORT]); authorization sees the name as written, as
// in Kubernetes. parts is the core path after "/api/v1/".
func proxyRoute(method string, parts []string, gvGroup string) (requestInfo, handlerFunc, bool) {
	if gvGroup != "" {
		return requestInfo{}, nil, false
	}
	var ns string
	if len(parts) >= 2 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) < 3 || (ns == "") != (parts[0] == "nodes") {
		return requestInfo{}, nil, false
	}
	res, name, sub := parts[0], parts[1], parts[2]
	var h handlerFunc
	switch {
	case sub == "proxy" && res == "pods":
		h = (*Server).servePodProxy
	case sub == "proxy" && res == "services":
		h = (*Server).serveServiceProxy
	case sub == "proxy" && res == "nodes":
		h = (*Server).serveNodeProxy
	case sub == "portforward" && res == "pods" && len(parts) == 3:
		h = (*Server).servePortForward
	default:
		return requestInfo{}, nil, false
	}
	r, _ := registry.Lookup(res)
	info := requestInfo{Verb: proxyVerb(method), Resource: r, Namespace: ns, Name: name, Subresource: sub}
	return info, h, info.Verb != ""
}

// proxyVerb is the verb a proxy request is authorized as: the method's,
// with HEAD and OPTIONS read as get.
func proxyVerb(method string) string {
	switch method {
	case http.MethodHead, http.MethodOptions:
		return "get"
	}
	return verbFor(method, true, false)
}

// proxyName splits [SCHEME:]NAME[:PORT] as Kubernetes does: "name",
// "name:port", "scheme:name:port".
func proxyName(spec string) (scheme, name, port string, err error) {
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		name, port = parts[0], parts[1]
	case 3:
		scheme, name, port = parts[0], parts[1], parts[2]
	}
	if len(parts) > 3 || name == "" || (scheme != "" && scheme != "http" && scheme != "https") {
		return "", "", "", badRequest("invalid proxy target %q: want [http:|https:]NAME[:PORT]", spec)
	}
	return scheme, name, port, nil
}

// servePodProxy hands pods/[SCHEME:]NAME[:PORT]/proxy[/PATH] to the pod's
// node, which reads the port and path from the URL.
func (s *Server) servePodProxy(w *statusRecorder, r *http.Request, info requestInfo) error {
	_, name, _, err := proxyName(info.Name)
	if err != nil {
		return err
	}
	if err := s.admitConnect(r, info); err != nil {
		return err
	}
	if redirectToRoot(w, r, info) {
		return nil
	}
	return s.streamPod(w, r, info.Namespace, name, "proxy")
}

// redirectToRoot answers a GET or HEAD of a proxy with no path after
// "proxy" with a permanent redirect to the same URL ending in "/", as
// Kubernetes does, so that the target's relative links resolve below
// the proxy. It reports whether it answered.
func redirectToRoot(w http.ResponseWriter, r *http.Request, info requestInfo) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if !strings.HasSuffix(r.URL.Path, "/"+info.Name+"/proxy") {
		return false
	}
	loc := r.URL.EscapedPath() + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusMovedPermanently)
	return true
}

// servePortForward hands pods/NAME/portforward to the pod's node.
func (s *Server) servePortForward(w *statusRecorder, r *http.Request, info requestInfo) error {
	if err := s.admitConnect(r, info); err != nil {
		return err
	}
	return s.streamPod(w, r, info.Namespace, info.Name, "portforward")
}

// streamPod reads a pod and hands the request to PodStreams.
func (s *Server) streamPod(w *statusRecorder, r *http.Request, ns, name, sub string) error {
	if s.cfg.PodStreams == nil {
		return notFoundPath(r.URL.Path)
	}
	res, _ := registry.Lookup("pods")
	obj, _, err := s.getObject(r.Context(), res, ns, name)
	if err != nil {
		return err
	}
	s.cfg.PodStreams.ServePodSubresource(w, r, obj.(*corev1.Pod), sub)
	return nil
}

// serveServiceProxy serves services/[SCHEME:]NAME[:PORT]/proxy[/PATH] by
// choosing one ready endpoint of the service port (by name or number; the
// only port when none is named) that is a pod, and proxying to that pod's
// target port as pods/proxy does.
func (s *Server) serveServiceProxy(w *statusRecorder, r *http.Request, info requestInfo) error {
	scheme, name, portSpec, err := proxyName(info.Name)
	if err != nil {
		return err
	}
	if err := s.admitConnect(r, info); err != nil {
		return err
	}
	if redirectToRoot(w, r, info) {
		return nil
	}
	ctx := r.Context()
	obj, _, err := s.getObject(ctx, info.Resource, info.Namespace, name)
	if err != nil {
		return err
	}
	svc := obj.(*corev1.Service)
	sp, err := servicePort(svc, portSpec)
	if err != nil {
		return err
	}
	epRes, _ := registry.Lookup("endpoints")
	obj, _, err = s.getObject(ctx, epRes, info.Namespace, name)
	if errors.Is(err, store.ErrNotFound) {
		return noEndpoints(name)
	} else if err != nil {
		return err
	}
	pod, port, ok := pickEndpoint(obj.(*corev1.Endpoints), sp)
	if !ok {
		return noEndpoints(name)
	}
	if scheme == "" {
		scheme = "http"
	}
	// The pod proxy reads its target from the path: rewrite it.
	before, rest, _ := strings.Cut(r.URL.EscapedPath(), "/"+info.Name+"/proxy")
	target := fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:%s:%d/proxy%s", info.Namespace, scheme, pod, port, rest)
	// Links in the pod's pages go through the service, as the client came.
	r2 := r.Clone(proxyprefix.With(ctx, before+"/"+info.Name+"/proxy"))
	r2.URL.RawPath = target
	r2.URL.Path = target
	if p, err := url.PathUnescape(target); err == nil {
		r2.URL.Path = p
	}
	return s.streamPod(w, r2, info.Namespace, pod, "proxy")
}

// servicePort finds the port a service proxy names.
func servicePort(svc *corev1.Service, spec string) (*corev1.ServicePort, error) {
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if spec == p.Name || spec == strconv.Itoa(int(p.Port)) || (spec == "" && len(svc.Spec.Ports) == 1) {
			return p, nil
		}
	}
	return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %q found for service %q", spec, svc.Name))
}

// pickEndpoint returns a random ready pod endpoint of sp and its port.
func pickEndpoint(ep *corev1.Endpoints, sp *corev1.ServicePort) (pod string, port int32, ok bool) {
	type cand struct {
		pod  string
		port int32
	}
	var cands []cand
	for _, ss := range ep.Subsets {
		for _, p := range ss.Ports {
			if p.Name != sp.Name || (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) {
				continue
			}
			for _, a := range ss.Addresses {
				if a.TargetRef != nil && a.TargetRef.Kind == "Pod" {
					cands = append(cands, cand{a.TargetRef.Name, p.Port})
				}
			}
		}
	}
	if len(cands) == 0 {
		return "", 0, false
	}
	c := cands[rand.IntN(len(cands))]
	return c.pod, c.port, true
}

func noEndpoints(svc string) error {
	return apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", svc))
}

// serveNodeProxy serves nodes/NAME/proxy/healthz: a node's agent serves no
// HTTP endpoints of its own (it reaches the server, not the other way), so
// of what a kubelet serves only the health check has a meaning here: "ok"
// while the node is Ready, 503 otherwise. Every other path is 404.
func (s *Server) serveNodeProxy(w *statusRecorder, r *http.Request, info requestInfo) error {
	_, name, _, err := proxyName(info.Name)
	if err != nil {
		return err
	}
	if err := s.admitConnect(r, info); err != nil {
		return err
	}
	obj, _, err := s.getObject(r.Context(), info.Resource, "", name)
	if err != nil {
		return err
	}
	_, rest, _ := strings.Cut(r.URL.Path, "/"+info.Name+"/proxy")
	if strings.Trim(rest, "/") != "healthz" {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "nodes/proxy"}, name+rest)
	}
	for _, c := range obj.(*corev1.Node).Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok"))
			return nil
		}
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf("node %q is not ready", name))
}
