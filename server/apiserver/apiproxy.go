package apiserver

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/transport"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
)

// serveRemote proxies a request under /apis/GROUP/VERSION to the Service
// of the APIService that holds GROUP/VERSION, once authorized as kube-apiserver
// authorizes it. It reports false for any other path.
func (s *Server) serveRemote(w *statusRecorder, r *http.Request, u auth.User, path string) bool {
	rest, ok := strings.CutPrefix(path, "/apis/")
	if !ok {
		return false
	}
	group, rest, _ := strings.Cut(rest, "/")
	version, rest, _ := strings.Cut(rest, "/")
	api := s.remoteAPIs().byGV[schema.GroupVersion{Group: group, Version: version}]
	if api == nil {
		return false
	}
	if strings.Trim(rest, "/") == "" {
		if !s.authorizePath(w, r, u) {
			return true
		}
	} else {
		info := remoteRequestInfo(r, api.gv, rest)
		if err := s.authorizeResource(r.Context(), u, info, resourceAttributes(info)); err != nil {
			refuse(w)
			s.writeStatus(w, r, err, schema.GroupResource{Group: group, Resource: info.Resource.Name}, info.Name)
			return true
		}
	}
	if api.resources == nil {
		s.writeStatus(w, r, unavailable(api), schema.GroupResource{}, "")
		return true
	}
	target, _ := url.Parse(api.base)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path, pr.Out.URL.RawPath = r.URL.Path, r.URL.RawPath
			pr.Out.Host = target.Host
			// The caller's credentials stay here; the Service learns who
			// asked from the request headers, as from the aggregator.
			setRemoteUser(pr.Out, u)
		},
		Transport:     api.client.Transport,
		FlushInterval: -1, // watches stream
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Debug("proxying to apiservice", "apiservice", api.name, "err", err)
			s.writeStatus(w, r, unavailable(api), schema.GroupResource{}, "")
		},
	}
	proxy.ServeHTTP(w, r)
	return true
}

// setRemoteUser replaces the credentials of r with the headers that name
// u to an aggregated server, which trusts them because the request comes
// with the front-proxy client certificate: X-Remote-User, X-Remote-Uid,
// one X-Remote-Group per group and X-Remote-Extra-KEY per extra value,
// set by client-go's auth proxy helper, which drops whatever the client
// sent under those names. The client's impersonation headers are dropped
// too.
func setRemoteUser(r *http.Request, u auth.User) {
	r.Header.Del("Authorization")
	for name := range r.Header {
		if strings.HasPrefix(name, "Impersonate-") {
			delete(r.Header, name)
		}
	}
	transport.SetAuthProxyHeaders(r, u.Name, u.UID, u.Groups, u.Extra)
}

// unavailable is the Status of a request for api when its Service does not
// answer.
func unavailable(api *remoteAPI) error {
	err := apierrors.NewServiceUnavailable("the server is currently unable to handle the request")
	err.ErrStatus.Details = &metav1.StatusDetails{Group: api.gv.Group}
	return err
}

// remoteRequestInfo describes a resource request under api's prefix for
// authorization; the resource is known by its name only.
func remoteRequestInfo(r *http.Request, gv schema.GroupVersion, rest string) requestInfo {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	watch := isTrue(r.URL.Query().Get("watch"))
	if parts[0] == "watch" && len(parts) > 1 {
		parts, watch = parts[1:], true
	}
	var info requestInfo
	if len(parts) >= 3 && parts[0] == "namespaces" {
		info.Namespace, parts = parts[1], parts[2:]
	} else if len(parts) == 2 && parts[0] == "namespaces" {
		// /namespaces/NAME of a group that serves namespaces
		info.Name = parts[1]
	}
	res := &registry.Resource{Name: parts[0], Group: gv.Group, Version: gv.Version, Namespaced: info.Namespace != ""}
	if len(parts) > 1 && info.Name == "" {
		info.Name = parts[1]
	}
	if len(parts) > 2 {
		info.Subresource = parts[2]
	}
	info.Resource = res
	info.Verb = verbFor(r.Method, info.Name != "", watch)
	return info
}

// remoteGroup is the discovery document of a group served by Services, or
// nil.
func (s *Server) remoteGroup(group string) *metav1.APIGroup {
	vs := s.remoteAPIs().versions[group]
	if len(vs) == 0 {
		return nil
	}
	g := apiGroup(group, vs)
	return &g
}

// remoteDiscovery lists the groups served by Services for aggregated
// discovery; a version whose document could not be read is Stale.
func (s *Server) remoteDiscovery() []apidiscoveryv2.APIGroupDiscovery {
	set := s.remoteAPIs()
	var out []apidiscoveryv2.APIGroupDiscovery
	for _, g := range set.groups {
		group := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		for _, v := range set.versions[g] {
			api := set.byGV[schema.GroupVersion{Group: g, Version: v}]
			if api.resources == nil {
				group.Versions = append(group.Versions, apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: apidiscoveryv2.DiscoveryFreshnessStale})
				continue
			}
			doc := *api.resources
			doc.GroupVersion = api.gv.String()
			group.Versions = append(group.Versions, versionDiscovery(&doc, apidiscoveryv2.DiscoveryFreshnessCurrent))
		}
		out = append(out, group)
	}
	return out
}
