package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/admission"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// The admission chain (package admission) decides the writes of clients
// by the webhooks and policies configured through the API. Its
// configurations come from the registry watch Run keeps (admissionCache);
// until that watch runs, each admitted request reads them from the store.

// PodDialer is the optional ability of a PodStreamer to open a TCP
// connection to a port of a pod, wherever it runs; the API server reaches
// webhooks behind a Service with it.
type PodDialer interface {
	DialPod(ctx context.Context, pod *corev1.Pod, port int) (net.Conn, error)
}

// admissionKey is the context key of the request the chain admits.
type admissionKey struct{}

// admissionRequest is a client's create, update, patch or delete.
type admissionRequest struct {
	user   auth.User
	info   requestInfo
	header http.Header // the response's, for warnings
}

// isAdmitted reports whether verb writes, so that the chain decides it.
func isAdmitted(verb string) bool {
	return isWrite(verb) || verb == "delete" || verb == "deletecollection"
}

// withAdmission returns r carrying what the chain needs of a write.
func withAdmission(w http.ResponseWriter, r *http.Request, u auth.User, info requestInfo) *http.Request {
	if !isAdmitted(info.Verb) && !isConnect(info) {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), admissionKey{}, &admissionRequest{user: u, info: info, header: w.Header()}))
}

// attributes builds the chain's view of a write of res by the request
// ctx carries; ok is false for a write the server makes of its own
// accord, or of another resource than the request's (which the chain
// does not see, as in Kubernetes).
func (s *Server) attributes(ctx context.Context, res *registry.Resource, obj, old runtime.Object, dryRun bool) (*admission.Attributes, *admissionRequest, bool) {
	ar, ok := ctx.Value(admissionKey{}).(*admissionRequest)
	if !ok || ar.info.Resource != res {
		return nil, nil, false
	}
	s.ensureAdmission(ctx)
	if s.admission.Empty() {
		return nil, nil, false
	}
	gv := res.GroupVersion()
	a := &admission.Attributes{
		Kind: gv.WithKind(res.Kind), Resource: gv.WithResource(res.Name), SubResource: ar.info.Subresource,
		Namespaced: res.Namespaced, Namespace: ar.info.Namespace, Name: ar.info.Name,
		User:   authenticationv1.UserInfo{Username: ar.user.Name, UID: ar.user.UID, Groups: ar.user.Groups, Extra: extraOf(ar.user.Extra)},
		Object: obj, OldObject: old, DryRun: dryRun,
	}
	var dry []string
	if dryRun {
		dry = []string{metav1.DryRunAll}
	}
	tm := metav1.TypeMeta{APIVersion: "meta.k8s.io/v1"}
	switch {
	case obj == nil:
		a.Operation = admissionv1.Delete
		tm.Kind = "DeleteOptions"
		a.Options = &metav1.DeleteOptions{TypeMeta: tm, DryRun: dry}
	case old == nil:
		a.Operation = admissionv1.Create
		tm.Kind = "CreateOptions"
		a.Options = &metav1.CreateOptions{TypeMeta: tm, DryRun: dry}
	default:
		a.Operation = admissionv1.Update
		tm.Kind = "UpdateOptions"
		a.Options = &metav1.UpdateOptions{TypeMeta: tm, DryRun: dry}
	}
	named := obj
	if named == nil {
		named = old
	}
	if m, err := meta.Accessor(named); named != nil && err == nil {
		if a.Name == "" {
			a.Name = m.GetName()
		}
		if a.Namespace == "" && res.Namespaced {
			a.Namespace = m.GetNamespace()
		}
	}
	return a, ar, true
}

func extraOf(e map[string][]string) map[string]authenticationv1.ExtraValue {
	if len(e) == 0 {
		return nil
	}
	out := make(map[string]authenticationv1.ExtraValue, len(e))
	for k, v := range e {
		out[k] = v
	}
	return out
}

// mutateWrite runs the mutating policies and webhooks on a write of obj over old (nil
// for a create) and returns the object to go on with.
func (s *Server) mutateWrite(ctx context.Context, res *registry.Resource, obj, old runtime.Object, dryRun bool) (runtime.Object, error) {
	a, ar, ok := s.attributes(ctx, res, obj, old, dryRun)
	if !ok {
		return obj, nil
	}
	warnings, err := s.admission.Mutate(ctx, a)
	addWarnings(ar.header, warnings)
	if err != nil {
		return nil, err
	}
	setTypeMeta(a.Object, res)
	return a.Object, nil
}

// validateWrite runs the policies and validating webhooks on a write of
// obj over old (obj nil for a delete, old nil for a create).
func (s *Server) validateWrite(ctx context.Context, res *registry.Resource, obj, old runtime.Object, dryRun bool) error {
	a, ar, ok := s.attributes(ctx, res, obj, old, dryRun)
	if !ok {
		return nil
	}
	warnings, err := s.admission.Validate(ctx, a)
	addWarnings(ar.header, warnings)
	return err
}

// admitDelete runs the mutating (whose patches have nothing to apply to)
// and validating admission of a delete of old.
func (s *Server) admitDelete(ctx context.Context, res *registry.Resource, old runtime.Object, dryRun bool) error {
	a, ar, ok := s.attributes(ctx, res, nil, old, dryRun)
	if !ok {
		return nil
	}
	warnings, err := s.admission.Mutate(ctx, a)
	addWarnings(ar.header, warnings)
	if err != nil {
		return err
	}
	warnings, err = s.admission.Validate(ctx, a)
	addWarnings(ar.header, warnings)
	return err
}

// addWarnings adds warnings to a response's header as Kubernetes does.
func addWarnings(h http.Header, warnings []string) {
	for _, w := range warnings {
		h.Add("Warning", fmt.Sprintf("299 - %q", w))
	}
}

// admissionResources are the kinds that configure the chain.
var admissionResources = []string{
	"mutatingwebhookconfigurations", "validatingwebhookconfigurations",
	"validatingadmissionpolicies", "validatingadmissionpolicybindings",
	"mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
}

// admissionCache holds the stored admission configurations, kept by Run's
// watch of the registry, and puts each change in force in the chain.
type admissionCache struct {
	chain *admission.Chain

	mu    sync.Mutex
	ready bool                      // guarded by mu; the watch keeps objs
	objs  map[string]runtime.Object // guarded by mu; by storage key
}

// resourceOfKey returns the admission resource a storage key belongs to.
func admissionResourceOfKey(key string) (*registry.Resource, bool) {
	parts := strings.SplitN(key, "/", 4) // "", registry, RESOURCE, NAME
	if len(parts) != 4 {
		return nil, false
	}
	for _, name := range admissionResources {
		if parts[2] == name {
			return registry.LookupIn(registry.GroupAdmissionRegistration, name)
		}
	}
	return nil, false
}

// observe applies one watch event of any key.
func (c *admissionCache) observe(ev store.Event) {
	res, ok := admissionResourceOfKey(ev.Key)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objs == nil {
		c.objs = map[string]runtime.Object{}
	}
	if ev.Type == store.EventDelete {
		delete(c.objs, ev.Key)
	} else if obj, err := decodeStored(res, ev.Value, ev.Revision); err == nil {
		c.objs[ev.Key] = obj
	}
	c.updateLocked()
}

// load replaces the configurations by those stored at rev (0: now); the
// watch from rev keeps them if watched is set.
func (c *admissionCache) load(ctx context.Context, st store.Store, rev int64, watched bool) error {
	objs := map[string]runtime.Object{}
	for _, name := range admissionResources {
		res, _ := registry.LookupIn(registry.GroupAdmissionRegistration, name)
		kvs, _, err := st.List(ctx, storagePrefix(res, ""), rev)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			obj, err := decodeStored(res, kv.Value, kv.ModRevision)
			if err != nil {
				return err
			}
			objs[kv.Key] = obj
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready && !watched {
		// The watch has caught up meanwhile: it knows better.
		return nil
	}
	c.objs, c.ready = objs, watched
	c.updateLocked()
	return nil
}

// unready makes admitted requests read the store again, while the watch
// is down.
func (c *admissionCache) unready() {
	c.mu.Lock()
	c.ready = false
	c.mu.Unlock()
}

func (c *admissionCache) isReady() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// updateLocked compiles the configurations into the chain.
// c.mu must be held.
func (c *admissionCache) updateLocked() {
	var cs admission.Configurations
	for _, obj := range c.objs {
		switch o := obj.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			cs.Mutating = append(cs.Mutating, o)
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			cs.Validating = append(cs.Validating, o)
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			cs.Policies = append(cs.Policies, o)
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			cs.Bindings = append(cs.Bindings, o)
		case *admissionregistrationv1.MutatingAdmissionPolicy:
			cs.MutatingPolicies = append(cs.MutatingPolicies, o)
		case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
			cs.MutatingBindings = append(cs.MutatingBindings, o)
		}
	}
	c.chain.Update(cs)
}

// ensureAdmission reads the configurations from the store while no watch
// keeps them.
func (s *Server) ensureAdmission(ctx context.Context) {
	if s.admissionCache.isReady() {
		return
	}
	if err := s.admissionCache.load(ctx, s.store, 0, false); err != nil {
		s.log.Warn("reading admission configurations", "err", err)
	}
}

// Namespace reads a namespace for the chain.
func (s *Server) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	res, _ := registry.Lookup("namespaces")
	obj, _, err := s.getObject(ctx, res, "", name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Namespace), nil
}

// admissionParams reads the parameters of policies.
type admissionParams struct{ s *Server }

func (p admissionParams) Params(ctx context.Context, gvk schema.GroupVersionKind, ns, name string, sel labels.Selector) ([]runtime.Object, error) {
	var res *registry.Resource
	for _, r := range registry.All() {
		if r.Kind == gvk.Kind && r.Group == gvk.Group && r.View == nil {
			res = r
			break
		}
	}
	if res == nil || res.GroupVersion() != gvk.GroupVersion() {
		return nil, fmt.Errorf("failed to find a resource for the paramKind %s", gvk)
	}
	if !res.Namespaced {
		ns = ""
	}
	if name != "" {
		obj, _, err := p.s.getObject(ctx, res, ns, name)
		if errors.Is(err, store.ErrNotFound) || apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []runtime.Object{obj}, nil
	}
	kvs, _, err := p.s.store.List(ctx, storagePrefix(res, ns), 0)
	if err != nil {
		return nil, err
	}
	var out []runtime.Object
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		if m, err := meta.Accessor(obj); err == nil && sel.Matches(labels.Set(m.GetLabels())) {
			out = append(out, obj)
		}
	}
	return out, nil
}

// serviceDialer reaches a Service's webhook through a ready endpoint pod,
// over the tunnel of the pod's node.
type serviceDialer struct {
	s      *Server
	dialer PodDialer
}

func (d serviceDialer) DialService(ctx context.Context, ns, name string, port int32) (net.Conn, error) {
	svcRes, _ := registry.Lookup("services")
	obj, _, err := d.s.getObject(ctx, svcRes, ns, name)
	if err != nil {
		return nil, fmt.Errorf("service %q in namespace %q: %w", name, ns, err)
	}
	sp, err := servicePort(obj.(*corev1.Service), fmt.Sprint(port))
	if err != nil {
		return nil, err
	}
	epRes, _ := registry.Lookup("endpoints")
	obj, _, err = d.s.getObject(ctx, epRes, ns, name)
	if err != nil {
		return nil, noEndpoints(name)
	}
	podName, podPort, ok := pickEndpoint(obj.(*corev1.Endpoints), sp)
	if !ok {
		return nil, noEndpoints(name)
	}
	podRes, _ := registry.Lookup("pods")
	obj, _, err = d.s.getObject(ctx, podRes, ns, podName)
	if err != nil {
		return nil, err
	}
	return d.dialer.DialPod(ctx, obj.(*corev1.Pod), int(podPort))
}

// connectSubresources are the subresources a CONNECT reaches, by
// resource.
var connectSubresources = map[string][]string{
	"pods":     {"exec", "attach", "portforward", "proxy"},
	"services": {"proxy"},
	"nodes":    {"proxy"},
}

// isConnect reports whether info is a CONNECT, which the chain admits
// whatever its method.
func isConnect(info requestInfo) bool {
	return info.Resource != nil && slices.Contains(connectSubresources[info.Resource.Name], info.Subresource)
}

// admitConnect runs the chain on a CONNECT to a pod, service or node
// subresource: the object is the request's options (PodExecOptions, …),
// as in Kubernetes; a mutating webhook's patches of them are not used.
func (s *Server) admitConnect(r *http.Request, info requestInfo) error {
	ctx := r.Context()
	opts, kind := connectOptions(r, info)
	a, ar, ok := s.attributes(ctx, info.Resource, opts, nil, false)
	if !ok {
		return nil
	}
	a.Operation, a.Options = admissionv1.Connect, nil
	if _, name, _, err := proxyName(info.Name); info.Subresource == "proxy" && err == nil {
		a.Name = name
	}
	a.Kind = schema.GroupVersionKind{Version: "v1", Kind: kind}
	warnings, err := s.admission.Mutate(ctx, a)
	addWarnings(ar.header, warnings)
	if err != nil {
		return err
	}
	a.Object = opts
	warnings, err = s.admission.Validate(ctx, a)
	addWarnings(ar.header, warnings)
	return err
}

// connectOptions reads the options of a CONNECT from its query, and
// returns them with their kind.
func connectOptions(r *http.Request, info requestInfo) (runtime.Object, string) {
	q := r.URL.Query()
	_, path, _ := strings.Cut(r.URL.Path, "/"+info.Name+"/proxy")
	switch {
	case info.Subresource == "exec":
		return &corev1.PodExecOptions{Container: q.Get("container"), Command: q["command"],
			Stdin: isTrue(q.Get("stdin")), Stdout: isTrue(q.Get("stdout")), Stderr: isTrue(q.Get("stderr")), TTY: isTrue(q.Get("tty"))}, "PodExecOptions"
	case info.Subresource == "attach":
		return &corev1.PodAttachOptions{Container: q.Get("container"),
			Stdin: isTrue(q.Get("stdin")), Stdout: isTrue(q.Get("stdout")), Stderr: isTrue(q.Get("stderr")), TTY: isTrue(q.Get("tty"))}, "PodAttachOptions"
	case info.Subresource == "portforward":
		var ports []int32
		for _, p := range q["ports"] {
			if n, err := strconv.ParseInt(p, 10, 32); err == nil {
				ports = append(ports, int32(n))
			}
		}
		return &corev1.PodPortForwardOptions{Ports: ports}, "PodPortForwardOptions"
	case info.Resource.Name == "services":
		return &corev1.ServiceProxyOptions{Path: path}, "ServiceProxyOptions"
	case info.Resource.Name == "nodes":
		return &corev1.NodeProxyOptions{Path: path}, "NodeProxyOptions"
	}
	return &corev1.PodProxyOptions{Path: path}, "PodProxyOptions"
}
