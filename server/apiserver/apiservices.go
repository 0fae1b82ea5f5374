package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/transport"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// APIServices (apiregistration.k8s.io/v1) say which server answers each
// group-version. The API server keeps one per group-version it serves
// itself (Local, always Available), as kube-apiserver's autoregistration
// does: those of built-in groups are labelled automanaged "onstart",
// those of custom resources "true" and removed when their definition
// goes. An APIService with a service hands its group-version to that
// Service: requests under /apis/GROUP/VERSION are proxied to it over
// HTTPS, through a ready endpoint pod and the tunnel of its node, and the
// resources it lists are merged into discovery. The APIService loop
// checks each such service's discovery document and records the answer
// in the Available condition.

const (
	// apiServiceResync is how often the APIService loop checks the
	// services again without being told of a change.
	apiServiceResync = 30 * time.Second
	// apiServiceCheckTimeout bounds one availability check.
	apiServiceCheckTimeout = 5 * time.Second
	// automanagedLabel marks the APIServices the API server keeps.
	automanagedLabel = "kube-aggregator.kubernetes.io/automanaged"
	// aggregatorUser is who the availability checks ask as, in the
	// front-proxy headers.
	aggregatorUser = "system:kube-aggregator"
)

// remoteAPI is a group-version an APIService hands to a Service.
type remoteAPI struct {
	name      string // of the APIService
	gv        schema.GroupVersion
	priority  [2]int32 // group priority minimum, version priority
	client    *http.Client
	base      string                  // https://NAME.NAMESPACE.svc:PORT
	resources *metav1.APIResourceList // its discovery document; nil until read
}

// remoteSet is the group-versions served by Services at one moment; the
// APIService loop replaces it, requests read whichever set is current.
type remoteSet struct {
	byGV     map[schema.GroupVersion]*remoteAPI
	versions map[string][]string // by group, preferred first
	groups   []string            // by priority
}

func (s *Server) remoteAPIs() *remoteSet {
	if set := s.remote.Load(); set != nil {
		return set
	}
	return &remoteSet{}
}

func apiServiceResource() *registry.Resource {
	res, _ := registry.LookupIn(registry.GroupAPIRegistration, "apiservices")
	return res
}

// kickAPIServices asks the APIService loop for a pass; it never blocks.
func (s *Server) kickAPIServices() {
	select {
	case s.apiServiceKick <- struct{}{}:
	default:
	}
}

// observeAPIService kicks the loop for a change of an APIService.
func (s *Server) observeAPIService(ev store.Event) {
	if strings.HasPrefix(ev.Key, storagePrefix(apiServiceResource(), "")) {
		s.kickAPIServices()
	}
}

// apiServicePasses runs the passes of the APIService loop, one at a
// time, each in a goroutine of its own: a pass may wait on services, which
// must not hold up Run's other loops. Its state is owned by Run's
// goroutine.
type apiServicePasses struct {
	s       *Server
	running bool
	pending bool       // a pass was asked for while one ran
	done    chan error // the running pass's result
}

// start starts a pass, or one more after the running one.
func (p *apiServicePasses) start(ctx context.Context) {
	if p.running {
		p.pending = true
		return
	}
	p.running = true
	go func() { p.done <- p.s.syncAPIServices(ctx) }()
}

// finished takes the result of the pass that ended.
func (p *apiServicePasses) finished(ctx context.Context, err error) {
	p.running = false
	if err != nil && ctx.Err() == nil {
		p.s.log.Warn("syncing apiservices", "err", err)
	}
	if p.pending {
		p.pending = false
		p.start(ctx)
	}
}

// wait returns once no pass runs.
func (p *apiServicePasses) wait() {
	if p.running {
		<-p.done
		p.running = false
	}
}

// syncAPIServices keeps the local APIServices, checks the others and
// installs the set of group-versions served by Services.
func (s *Server) syncAPIServices(ctx context.Context) error {
	res := apiServiceResource()
	kvs, _, err := s.store.List(ctx, storagePrefix(res, ""), 0)
	if err != nil {
		return err
	}
	stored := map[string]*apiregistrationv1.APIService{}
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return err
		}
		a := obj.(*apiregistrationv1.APIService)
		stored[a.Name] = a
	}
	local := s.customAPIServices()
	errs := []error{s.createLocal(ctx, local, stored)}
	set := &remoteSet{byGV: map[schema.GroupVersion]*remoteAPI{}, versions: map[string][]string{}}
	// The conditions of the services checked are written once their set
	// is served: a client that sees Available may use the group at once.
	var checked []func() error
	for name, a := range stored {
		if a.Spec.Service == nil {
			if a.Labels[automanagedLabel] == "true" && local[name] == nil {
				if _, err := s.deleteObject(ctx, res, "", name, metav1.DeleteOptions{}); err != nil && !errors.Is(err, store.ErrNotFound) {
					errs = append(errs, err)
				}
				continue
			}
			errs = append(errs, s.setAvailable(ctx, a, apiregistrationv1.ConditionTrue, "Local", "Local APIServices are always available"))
			continue
		}
		api, err := s.checkRemote(ctx, a)
		status, reason, msg := apiregistrationv1.ConditionTrue, "Passed", "all checks passed"
		if err != nil {
			status, reason, msg = apiregistrationv1.ConditionFalse, reasonOf(err), err.Error()
		}
		checked = append(checked, func() error { return s.setAvailable(ctx, a, status, reason, msg) })
		set.byGV[api.gv] = api
	}
	set.order()
	s.remote.Store(set)
	for _, write := range checked {
		errs = append(errs, write())
	}
	return errors.Join(errs...)
}

// EnsureAPIServices creates the APIServices of the group-versions the
// server serves itself, Available, before it serves: the APIService loop
// then has nothing to write unless something changes.
func (s *Server) EnsureAPIServices(ctx context.Context) error {
	kvs, _, err := s.store.List(ctx, storagePrefix(apiServiceResource(), ""), 0)
	if err != nil {
		return err
	}
	stored := map[string]*apiregistrationv1.APIService{}
	prefix := storagePrefix(apiServiceResource(), "")
	for _, kv := range kvs {
		stored[strings.TrimPrefix(kv.Key, prefix)] = nil
	}
	return s.createLocal(ctx, builtinAPIServices(), stored)
}

// createLocal creates the APIServices of local missing from stored, marks
// them Available and adds them to stored.
func (s *Server) createLocal(ctx context.Context, local, stored map[string]*apiregistrationv1.APIService) error {
	var errs []error
	for name, want := range local {
		if _, ok := stored[name]; ok {
			continue
		}
		obj, _, err := s.createObject(ctx, apiServiceResource(), want.DeepCopy(), false)
		if err != nil {
			if !apierrors.IsAlreadyExists(err) && !errors.Is(err, store.ErrExists) {
				errs = append(errs, err)
			}
			continue
		}
		a := obj.(*apiregistrationv1.APIService)
		if err := s.setAvailable(ctx, a, apiregistrationv1.ConditionTrue, "Local", "Local APIServices are always available"); err != nil {
			errs = append(errs, err)
			continue
		}
		stored[name] = a
	}
	return errors.Join(errs...)
}

// order sorts each group's versions and the groups by priority, highest
// first, as the aggregator lists them.
func (set *remoteSet) order() {
	groupPriority := map[string]int32{}
	for gv, api := range set.byGV {
		set.versions[gv.Group] = append(set.versions[gv.Group], gv.Version)
		groupPriority[gv.Group] = max(groupPriority[gv.Group], api.priority[0])
	}
	for g, vs := range set.versions {
		sort.Slice(vs, func(i, j int) bool {
			pi, pj := set.byGV[schema.GroupVersion{Group: g, Version: vs[i]}].priority[1], set.byGV[schema.GroupVersion{Group: g, Version: vs[j]}].priority[1]
			if pi != pj {
				return pi > pj
			}
			return vs[i] < vs[j]
		})
		set.groups = append(set.groups, g)
	}
	sort.Slice(set.groups, func(i, j int) bool {
		if groupPriority[set.groups[i]] != groupPriority[set.groups[j]] {
			return groupPriority[set.groups[i]] > groupPriority[set.groups[j]]
		}
		return set.groups[i] < set.groups[j]
	})
}

// builtinAPIServices are the APIServices of the built-in group-versions,
// by name: they change only with the binary, so EnsureAPIServices
// creates them before the server serves.
func builtinAPIServices() map[string]*apiregistrationv1.APIService {
	out := map[string]*apiregistrationv1.APIService{}
	add := localAPIService(out)
	add("", "v1", "onstart", 18000, 1)
	for i, g := range apiGroups() {
		// The preferred version has the highest version priority.
		vs := registry.Versions(g)
		if len(vs) == 0 {
			vs = []string{"v1"} // a group served by handlers only
		}
		for j, v := range vs {
			add(g, v, "onstart", int32(17900-10*i), int32(15*(len(vs)-j)))
		}
	}
	return out
}

// customAPIServices are the APIServices of the custom group-versions
// served now, by name.
func (s *Server) customAPIServices() map[string]*apiregistrationv1.APIService {
	out := map[string]*apiregistrationv1.APIService{}
	add := localAPIService(out)
	custom := s.customResources()
	for _, g := range custom.groups {
		for i, v := range custom.versions[g] {
			add(g, v, "true", 1000, int32(100-i))
		}
	}
	return out
}

// localAPIService returns a func adding to out the APIService of a
// group-version the server serves itself.
func localAPIService(out map[string]*apiregistrationv1.APIService) func(group, version, managed string, groupPriority, versionPriority int32) {
	return func(group, version, managed string, groupPriority, versionPriority int32) {
		a := &apiregistrationv1.APIService{
			TypeMeta:   metav1.TypeMeta{Kind: "APIService", APIVersion: "apiregistration.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: version + "." + group, Labels: map[string]string{automanagedLabel: managed}},
			Spec: apiregistrationv1.APIServiceSpec{
				Group: group, Version: version, GroupPriorityMinimum: groupPriority, VersionPriority: versionPriority,
			},
		}
		out[a.Name] = a
	}
}

// setAvailable records a's Available condition unless it says so already.
func (s *Server) setAvailable(ctx context.Context, a *apiregistrationv1.APIService, status apiregistrationv1.ConditionStatus, reason, msg string) error {
	for _, c := range a.Status.Conditions {
		if c.Type == apiregistrationv1.Available && c.Status == status && c.Reason == reason && c.Message == msg {
			return nil
		}
	}
	now := metav1.NewTime(s.cfg.Now().Truncate(time.Second))
	_, err := s.updateObject(ctx, apiServiceResource(), "", a.Name, updateRaw, false, func(cur runtime.Object) (runtime.Object, error) {
		c := cur.(*apiregistrationv1.APIService)
		if c.UID != a.UID && a.UID != "" {
			return c, nil // replaced meanwhile: the next pass sees it
		}
		cond := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: status, Reason: reason, Message: msg, LastTransitionTime: now}
		i := slices.IndexFunc(c.Status.Conditions, func(c apiregistrationv1.APIServiceCondition) bool { return c.Type == apiregistrationv1.Available })
		if i < 0 {
			c.Status.Conditions = append(c.Status.Conditions, cond)
			return c, nil
		}
		if c.Status.Conditions[i].Status == status {
			cond.LastTransitionTime = c.Status.Conditions[i].LastTransitionTime
		}
		c.Status.Conditions[i] = cond
		return c, nil
	})
	if errors.Is(err, store.ErrNotFound) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// checkError is a failed availability check with the condition reason.
type checkError struct {
	reason string
	err    error
}

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

func reasonOf(err error) string {
	var ce *checkError
	if errors.As(err, &ce) {
		return ce.reason
	}
	return "FailedDiscoveryCheck"
}

// checkRemote builds the proxy of a's Service and reads the discovery
// document of its group-version. The remoteAPI is returned even when the
// check fails, without resources.
func (s *Server) checkRemote(ctx context.Context, a *apiregistrationv1.APIService) (*remoteAPI, error) {
	api := &remoteAPI{
		name:     a.Name,
		gv:       schema.GroupVersion{Group: a.Spec.Group, Version: a.Spec.Version},
		priority: [2]int32{a.Spec.GroupPriorityMinimum, a.Spec.VersionPriority},
	}
	svc := a.Spec.Service
	port := int32(443)
	if svc.Port != nil {
		port = *svc.Port
	}
	api.base = "https://" + net.JoinHostPort(svc.Name+"."+svc.Namespace+".svc", strconv.Itoa(int(port)))
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: svc.Name + "." + svc.Namespace + ".svc", InsecureSkipVerify: a.Spec.InsecureSkipTLSVerify}
	if s.cfg.FrontProxyCertificate != nil {
		// The aggregated server trusts the headers naming the user
		// (setRemoteUser) because of this certificate.
		tc.GetClientCertificate = s.cfg.FrontProxyCertificate
	}
	if len(a.Spec.CABundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(a.Spec.CABundle) {
			return api, &checkError{"FailedDiscoveryCheck", errors.New("spec.caBundle holds no PEM certificate")}
		}
		tc.RootCAs = pool
	}
	api.client = &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   tc,
			DisableKeepAlives: true, // each request dials a ready endpoint of the moment
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return s.dialService(ctx, svc.Namespace, svc.Name, port)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ctx, cancel := context.WithTimeout(ctx, apiServiceCheckTimeout)
	defer cancel()
	// Dial once apart to tell a missing service or endpoint from a
	// server that does not answer.
	conn, err := s.dialService(ctx, svc.Namespace, svc.Name, port)
	if err != nil {
		reason := "MissingEndpoints"
		if errors.Is(err, store.ErrNotFound) {
			reason = "ServiceNotFound"
		}
		return api, &checkError{reason, fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)}
	}
	conn.Close()
	path := "/apis/" + api.gv.String()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.base+path, nil)
	req.Header.Set("Accept", "application/json")
	// As kube-aggregator checks: system:masters may read any discovery
	// document, so the answer tells whether the service serves, not
	// whom it lets in. Naming no one, the check is refused: the
	// front-proxy certificate alone authenticates no one (the sample API
	// server answers 401), and anonymous users may not read discovery.
	transport.SetAuthProxyHeaders(req, aggregatorUser, "", []string{"system:masters"}, nil)
	resp, err := api.client.Do(req)
	if err != nil {
		return api, &checkError{"FailedDiscoveryCheck", fmt.Errorf("failing or missing response from %s: %w", api.base+path, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil || resp.StatusCode != http.StatusOK {
		return api, &checkError{"FailedDiscoveryCheck", fmt.Errorf("failing or missing response from %s: bad status from %s: %d", api.base+path, api.base+path, resp.StatusCode)}
	}
	list := &metav1.APIResourceList{}
	if err := json.Unmarshal(body, list); err != nil {
		return api, &checkError{"FailedDiscoveryCheck", fmt.Errorf("discovery document of %s: %w", api.base+path, err)}
	}
	api.resources = list
	return api, nil
}

// dialService connects to port of the Service through one of its ready
// endpoint pods, over the tunnel of the pod's node.
func (s *Server) dialService(ctx context.Context, ns, name string, port int32) (net.Conn, error) {
	d, ok := s.cfg.PodStreams.(PodDialer)
	if !ok {
		return nil, errors.New("no tunnel to the nodes to reach services")
	}
	return serviceDialer{s, d}.DialService(ctx, ns, name, port)
}
