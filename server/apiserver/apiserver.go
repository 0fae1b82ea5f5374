package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/internal/defaults"
	"github.com/minik-dev/minik/server/admission"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/store"
)

// Authenticator identifies the user behind a request.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.User, bool)
}

// Authorizer decides whether a user may do what a request asks.
type Authorizer interface {
	Authorize(ctx context.Context, u auth.User, a auth.Attributes) (allowed bool, reason string)
}

// PodStreamer serves the streaming subresources of a pod, which the node
// running it answers: log, exec, attach, proxy and portforward. The API
// server has already authenticated and authorized the request and read the
// pod.
type PodStreamer interface {
	ServePodSubresource(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string)
}

// Config holds what the API server needs.
type Config struct {
	Store store.Store
	// Authenticator and Authorizer may be nil only in tests that serve
	// the handler without authentication.
	Authenticator Authenticator
	Authorizer    Authorizer
	Logger        *slog.Logger
	// PodStreams serves the pods/log, pods/exec and pods/attach
	// subresources (nil → 404).
	PodStreams PodStreamer
	// FrontProxyCertificate gives the client certificate presented to
	// the Services of APIServices, whose CA aggregated servers trust to
	// name the user in X-Remote-* headers (pki's front-proxy client); nil
	// presents none.
	FrontProxyCertificate func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// Metrics registers the server's collectors; nil → not exported.
	Metrics *Metrics
	// BookmarkInterval is the least time between two BOOKMARK events on a
	// watch that asked for them (default 1 minute).
	BookmarkInterval time.Duration
	// MaxWatchDuration ends watches after this long (clients then watch
	// again from their last revision); default 30 minutes.
	MaxWatchDuration time.Duration
	// ServiceCIDR is where Service cluster IPs come from.
	ServiceCIDR string
	// NodePortRange is where NodePorts come from ("30000-32767").
	NodePortRange string
	// CacheBytes bounds each of the caches of recent changes (decoded
	// objects, and their protobuf and JSON watch encodings), by the bytes
	// their values hold (default DefaultCacheBytes).
	CacheBytes int
	// WatchBufferBytes bounds the events a watch may have waiting for
	// its client (default DefaultWatchBufferBytes): a client that lets
	// more pile up is cut off, and watches again from where it was.
	WatchBufferBytes int
	// Version is reported at /version.
	Version string
	// Now returns the current time (tests pass a fixed clock).
	Now func() time.Time
	// BodyTimeout bounds the reading of a request body, from its first
	// read (default DefaultBodyTimeout): a client that sends one slowly
	// does not hold a connection and a handler for longer.
	BodyTimeout time.Duration
	// ServiceAccounts signs the tokens of serviceaccounts/NAME/token and
	// gives the OpenID discovery documents (nil → those paths are 404).
	// With it, new pods go through ServiceAccount admission (podsa.go):
	// their account must exist and they get its credentials volume.
	ServiceAccounts *serviceaccount.Issuer
	// APIAudiences are the audiences of the tokens the API accepts, the
	// default audiences of a TokenRequest; empty means the issuer URL.
	APIAudiences []string
	// Rules lists a user's RBAC rules for SelfSubjectRulesReview; nil
	// answers every such review as incomplete.
	Rules RuleResolver
	// JWKSURI is the jwks_uri of the OpenID configuration; empty means
	// the issuer URL + /openid/v1/jwks.
	JWKSURI string
	// Snapshots saves store snapshots for POST SnapshotsPath (nil → 404).
	Snapshots Snapshotter
}

// DefaultBodyTimeout is Config.BodyTimeout's default, the time
// Kubernetes gives a whole request that is not a watch or a stream.
const DefaultBodyTimeout = time.Minute

// Server serves the Kubernetes-shaped REST API over a Store.
type Server struct {
	cfg     Config
	store   store.Store
	log     *slog.Logger
	metrics *Metrics
	ips     *ipAllocator
	ports   *portAllocator
	nsQueue chan string // namespaces marked for deletion, for Run
	// objects holds recently decoded stored objects, read-only, for
	// watchers and the writes that follow; events their protobuf
	// envelopes, shared among protobuf watchers, and jsonEvents their
	// JSON, shared among JSON watchers.
	objects    *revCache[runtime.Object]
	events     *revCache[[]byte]
	jsonEvents *revCache[[]byte]
	writing    writesInFlight // objects being stored, for watchers that see them first

	loopMu  sync.Mutex
	loopCtx context.Context // set by ServeLoopback; guarded by loopMu

	nsMu    sync.Mutex
	nsCache map[string]nsState // guarded by nsMu; namespace key → last decoded state

	readyMu sync.Mutex
	ready   bool

	// quotaLocks holds a *sync.RWMutex per namespace (see quotaLock).
	quotaLocks sync.Map
	// policies knows the namespaces with LimitRanges or ResourceQuotas.
	policies policyIndex
	// custom is the set of custom resources served (see custom.go).
	custom atomic.Pointer[customSet]
	// fields records managedFields and merges apply patches (see
	// fieldmanager.go).
	fields fieldManagers
	// remote is the set of group-versions served by Services (see
	// apiservices.go); apiServiceKick asks its loop for a pass.
	remote         atomic.Pointer[remoteSet]
	apiServiceKick chan struct{}
	// discoveryCache holds the last aggregated documents of /apis and
	// /api, in this order (aggregated.go).
	discoveryCache [2]atomic.Pointer[aggregatedDoc]

	// admission decides writes by the webhooks and policies configured,
	// which admissionCache keeps in it.
	admission      *admission.Chain
	admissionCache admissionCache
}

// nsState is what creates need to know of a namespace.
type nsState struct {
	rev         int64
	terminating bool
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BookmarkInterval == 0 {
		cfg.BookmarkInterval = time.Minute
	}
	if cfg.MaxWatchDuration == 0 {
		cfg.MaxWatchDuration = 30 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.WatchBufferBytes <= 0 {
		cfg.WatchBufferBytes = DefaultWatchBufferBytes
	}
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = defaults.ServiceCIDR
	}
	ips, err := newIPAllocator(cfg.Store, cfg.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	if cfg.NodePortRange == "" {
		cfg.NodePortRange = defaults.NodePortRange
	}
	base, size, err := parsePortRange(cfg.NodePortRange)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		store:      cfg.Store,
		log:        cfg.Logger.With("component", "apiserver"),
		metrics:    cfg.Metrics,
		ips:        ips,
		ports:      newPortAllocator(cfg.Store, base, size),
		nsQueue:    make(chan string, 64),
		objects:    newRevCache(cfg.CacheBytes, objectWeight),
		events:     newRevCache(cfg.CacheBytes, bytesLen),
		jsonEvents: newRevCache(cfg.CacheBytes, bytesLen),
		nsCache:    map[string]nsState{},

		apiServiceKick: make(chan struct{}, 1),
	}
	s.custom.Store(newCustomSet(nil))
	acfg := admission.Config{Namespaces: s, Params: admissionParams{s}, Schemas: &admissionSchemas{}, Logger: cfg.Logger}
	if d, ok := cfg.PodStreams.(PodDialer); ok {
		acfg.Services = serviceDialer{s, d}
	}
	s.admission = admission.New(acfg)
	s.admissionCache.chain = s.admission
	return s, nil
}

// SetReady marks the server ready (answers /readyz with 200).
func (s *Server) SetReady(ready bool) {
	s.readyMu.Lock()
	s.ready = ready
	s.readyMu.Unlock()
}

func (s *Server) isReady() bool {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	return s.ready
}

// ServeHTTP routes a request: public health paths first, then
// authentication, authorization and the resource handlers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = newDeadlineBody(r.Body, http.NewResponseController(w), s.cfg.BodyTimeout)
	}
	verb, resource := s.serve(rec, r)
	s.metrics.observe(verb, resource, rec.code, time.Since(start))
}

func (s *Server) serve(w *statusRecorder, r *http.Request) (verb, resource string) {
	path := r.URL.Path
	switch path {
	case "/healthz", "/livez":
		w.Write([]byte("ok"))
		return "get", "healthz"
	case "/readyz":
		if !s.isReady() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return "get", "readyz"
		}
		w.Write([]byte("ok"))
		return "get", "readyz"
	case "/version":
		s.serveVersion(w)
		return "get", "version"
	}
	user, ok := s.authenticate(r)
	if !ok {
		refuse(w)
		st := apierrors.NewUnauthorized("Unauthorized")
		s.writeStatus(w, r, st, schema.GroupResource{}, "")
		return r.Method, "unauthorized"
	}
	user, err := s.impersonate(r.Context(), r, user)
	if err != nil {
		if apierrors.IsForbidden(err) {
			refuse(w)
		}
		s.writeStatus(w, r, err, schema.GroupResource{}, "")
		return r.Method, "impersonation"
	}
	r = r.WithContext(auth.WithUser(r.Context(), user))
	if s.serveRemote(w, r, user, path) {
		return strings.ToLower(r.Method), "apiservice"
	}
	if rest, gv, found := s.cutResourcePrefix(path); found && rest != "" {
		if info, handle, ok := handlerRoute(r.Method, rest, gv.Group); ok {
			if r, ok := s.authorize(w, r, user, info); ok {
				if err := handle(s, w, r, info); err != nil {
					s.writeStatus(w, r, err, schema.GroupResource{Group: info.Resource.Group, Resource: info.Resource.Name}, info.Name)
				}
			}
			return info.Verb, info.Resource.Name
		}
		watch := isTrue(r.URL.Query().Get("watch"))
		// The deprecated watch paths, /api/v1/watch/..., which clients
		// still send.
		if after, isWatch := strings.CutPrefix(rest, "watch/"); isWatch && r.Method == http.MethodGet {
			rest, watch = after, true
		}
		info, ok := s.parseResourcePath(r.Method, gv, rest, watch)
		if !ok || info.Resource.GroupVersion() != gv {
			s.writeStatus(w, r, apierrors.NewNotFound(schema.GroupResource{}, ""), schema.GroupResource{}, "")
			return r.Method, "unknown"
		}
		r, ok = s.authorize(w, r, user, info)
		if !ok {
			return info.Verb, info.Resource.Name
		}
		s.serveResource(w, r, info)
		return info.Verb, info.Resource.Name
	}
	if !s.authorizePath(w, r, user) {
		return "get", path
	}
	s.serveNonResource(w, r)
	return strings.ToLower(r.Method), "nonresource"
}

func (s *Server) authenticate(r *http.Request) (auth.User, bool) {
	if u, ok := loopbackUser(r); ok {
		return u, true
	}
	if s.cfg.Authenticator == nil {
		return auth.User{Name: "system:admin", Groups: []string{"system:masters"}}, true
	}
	return s.cfg.Authenticator.Authenticate(r)
}

// authorize decides a resource request, writing the Status of a denial.
// It returns r, carrying for a write what admit needs to decide on the
// object the write would store.
func (s *Server) authorize(w *statusRecorder, r *http.Request, u auth.User, info requestInfo) (*http.Request, bool) {
	r = withAdmission(w, r, u, info)
	if s.cfg.Authorizer == nil {
		return r, true
	}
	named := !createNameDeferred(u, info)
	if named {
		attrs := resourceAttributes(info)
		if attrs.Name == "" && (info.Verb == "list" || info.Verb == "watch") {
			attrs.Name = selectedName(r)
		}
		if err := s.authorizeResource(r.Context(), u, info, attrs); err != nil {
			refuse(w)
			gr := schema.GroupResource{Resource: info.Resource.Name}
			s.writeStatus(w, r, err, gr, info.Name)
			return r, false
		}
	}
	if !isWrite(info.Verb) {
		return r, true
	}
	return r.WithContext(withWrite(r.Context(), &writeRequest{user: u, info: info, named: named})), true
}

// resourceAttributes are the attributes the Authorizer decides a resource
// request by.
func resourceAttributes(info requestInfo) auth.Attributes {
	return auth.Attributes{
		Verb: info.Verb, APIGroup: info.Resource.Group, Resource: info.Resource.Name, Subresource: info.Subresource,
		Namespace: info.Namespace, Name: info.Name,
	}
}

// selectedName is the one name a list or watch selects with the field
// selector metadata.name=NAME, "" for none: as in Kubernetes, such a
// request is authorized as a request for that object (a node may watch
// a Secret its pod uses, and no other).
func selectedName(r *http.Request) string {
	sel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector"))
	if err != nil {
		return ""
	}
	name, _ := sel.RequiresExactMatch("metadata.name")
	return name
}

// authorizeResource asks the Authorizer (if any) whether u may do the
// request info, described by attrs; a denial is a 403 Forbidden Status.
func (s *Server) authorizeResource(ctx context.Context, u auth.User, info requestInfo, attrs auth.Attributes) error {
	if s.cfg.Authorizer == nil {
		return nil
	}
	allowed, reason := s.cfg.Authorizer.Authorize(ctx, u, attrs)
	if allowed {
		return nil
	}
	gr := schema.GroupResource{Resource: info.Resource.Name}
	return apierrors.NewForbidden(gr, info.Name, forbiddenReason(u, info, reason))
}

func (s *Server) authorizePath(w *statusRecorder, r *http.Request, u auth.User) bool {
	if s.cfg.Authorizer == nil {
		return true
	}
	allowed, reason := s.cfg.Authorizer.Authorize(r.Context(), u, auth.Attributes{Verb: pathVerb(r.Method), Path: r.URL.Path})
	if allowed {
		return true
	}
	refuse(w)
	st := apierrors.NewForbidden(schema.GroupResource{}, "", errString(reason))
	st.ErrStatus.Message = "forbidden: User \"" + u.Name + "\" cannot " + strings.ToLower(r.Method) + " path \"" + r.URL.Path + "\""
	s.writeStatus(w, r, st, schema.GroupResource{}, "")
	return false
}

// pathVerb is the RBAC verb of a request for a non-resource path: the
// method in lower case, as in Kubernetes, with HEAD read as get.
func pathVerb(method string) string {
	if method == http.MethodHead {
		return "get"
	}
	return strings.ToLower(method)
}

type errString string

func (e errString) Error() string { return string(e) }

func forbiddenReason(u auth.User, info requestInfo, reason string) error {
	msg := "User \"" + u.Name + "\" cannot " + info.Verb + " resource \"" + info.Resource.Name + "\""
	if info.Subresource != "" {
		msg += " subresource \"" + info.Subresource + "\""
	}
	if info.Namespace != "" {
		msg += " in the namespace \"" + info.Namespace + "\""
	}
	if reason != "" {
		msg += ": " + reason
	}
	return errString(msg)
}

func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

func formatRV(rev int64) string { return strconv.FormatInt(rev, 10) }

// statusRecorder remembers the status code written, for metrics, and
// passes Flush through for watches.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code = code
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// PodNode returns the node a pod is bound to ("" if unbound), for the
// node authorizer: from the pod ctx carries if an in-process write has
// just read it (withPodRead), else from the store.
func (s *Server) PodNode(ctx context.Context, namespace, name string) (string, error) {
	if pod, ok := ctx.Value(podReadKey{}).(*corev1.Pod); ok && pod.Namespace == namespace && pod.Name == name {
		return pod.Spec.NodeName, nil
	}
	res, _ := registry.Lookup("pods")
	kv, err := s.store.Get(ctx, storageKey(res, namespace, name))
	if err != nil {
		return "", err
	}
	// Every status update a node makes asks, and then updates the pod at
	// this revision: decoding it once for the cache serves both.
	obj, err := s.decodeShared(res, kv.Key, kv.Value, kv.ModRevision)
	if err != nil {
		return "", err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return "", fmt.Errorf("stored pod %s/%s decoded as %T", namespace, name, obj)
	}
	return pod.Spec.NodeName, nil
}

// Hijack passes connection upgrades (exec, attach) through.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errString("the connection cannot be upgraded")
	}
	r.wroteHeader, r.code = true, http.StatusSwitchingProtocols
	return h.Hijack()
}
