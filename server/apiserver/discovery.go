package apiserver

import (
	"net/http"
	"runtime"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/minik-dev/minik/server/registry"
)

// serveNonResource serves discovery and the other non-resource paths.
func (s *Server) serveNonResource(w *statusRecorder, r *http.Request) {
	if s.serveOpenAPI(w, r) || s.serveOIDC(w, r, r.URL.Path) {
		return
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/api":
		if v := aggregatedVersion(r); v != "" {
			s.serveAggregated(w, r, true, v)
			return
		}
		writeJSON(w, http.StatusOK, &metav1.APIVersions{
			TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
			Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
				{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
			},
		})
	case "/api/v1":
		writeJSON(w, http.StatusOK, apiResourceList())
	case "/apis":
		if v := aggregatedVersion(r); v != "" {
			s.serveAggregated(w, r, false, v)
			return
		}
		writeJSON(w, http.StatusOK, s.apiGroupList())
	case SnapshotsPath:
		s.serveSnapshots(w, r)
	case "/metrics":
		if s.metrics == nil {
			http.NotFound(w, r)
			return
		}
		s.metrics.handler.ServeHTTP(w, r)
	default:
		if v := s.groupDiscovery(strings.TrimSuffix(r.URL.Path, "/")); v != nil {
			writeJSON(w, http.StatusOK, v)
			return
		}
		s.writeStatus(w, r, notFoundPath(r.URL.Path), schemaGR(""), "")
	}
}

func notFoundPath(path string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource: " + path,
	}}
}

// categories group resources for `kubectl get all`, as in Kubernetes.
var categories = map[string][]string{
	"pods": {"all"}, "services": {"all"}, "replicationcontrollers": {"all"},
	"deployments": {"all"}, "replicasets": {"all"}, "daemonsets": {"all"}, "statefulsets": {"all"},
}

// proxyVerbs are the verbs of the proxy subresources: every method.
var proxyVerbs = metav1.Verbs{"create", "delete", "get", "patch", "update"}

// connectResources are the subresources that connect to a pod or a node,
// by resource, as Kubernetes lists them.
var connectResources = map[string][]metav1.APIResource{
	"pods": {
		{Name: "pods/attach", Namespaced: true, Kind: "PodAttachOptions", Verbs: metav1.Verbs{"create", "get"}},
		{Name: "pods/exec", Namespaced: true, Kind: "PodExecOptions", Verbs: metav1.Verbs{"create", "get"}},
		{Name: "pods/log", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get"}},
		{Name: "pods/portforward", Namespaced: true, Kind: "PodPortForwardOptions", Verbs: metav1.Verbs{"create", "get"}},
		{Name: "pods/proxy", Namespaced: true, Kind: "PodProxyOptions", Verbs: proxyVerbs},
	},
	"services": {{Name: "services/proxy", Namespaced: true, Kind: "ServiceProxyOptions", Verbs: proxyVerbs}},
	"nodes":    {{Name: "nodes/proxy", Kind: "NodeProxyOptions", Verbs: proxyVerbs}},
}

// apiResourceList describes the resources of core/v1 for discovery.
func apiResourceList() *metav1.APIResourceList {
	list := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: "v1",
	}
	for _, res := range registry.All() {
		if res.Group != "" {
			continue // served under /apis/GROUP/v1 (groups.go)
		}
		verbs := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: res.Name, SingularName: res.Singular, Namespaced: res.Namespaced,
			Kind: res.Kind, Verbs: verbs, ShortNames: res.ShortNames, Categories: categories[res.Name],
		})
		if res.HasStatus {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: res.Name + "/status", Namespaced: res.Namespaced, Kind: res.Kind,
				Verbs: metav1.Verbs{"get", "patch", "update"},
			})
		}
		if res.HasScale {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: res.Name + "/scale", Namespaced: res.Namespaced, Group: "autoscaling",
				Version: "v1", Kind: "Scale", Verbs: metav1.Verbs{"get", "patch", "update"},
			})
		}
		if res.Name == "pods" {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: "pods/binding", Namespaced: true, Kind: "Binding", Verbs: metav1.Verbs{"create"},
			}, evictionResource, metav1.APIResource{
				Name: "pods/ephemeralcontainers", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "patch", "update"},
			}, metav1.APIResource{
				Name: "pods/resize", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "patch", "update"},
			})
		}
		list.APIResources = append(list.APIResources, connectResources[res.Name]...)
		if res.Name == "serviceaccounts" {
			list.APIResources = append(list.APIResources, tokenRequestResource)
		}
		if res.Name == "namespaces" {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: "namespaces/finalize", Kind: "Namespace", Verbs: metav1.Verbs{"update"},
			})
		}
	}
	return list
}

// Version is the version of the Kubernetes API minik serves.
const kubeGitVersion = "v1.37.0"

func (s *Server) serveVersion(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, &version.Info{
		Major:      "1",
		Minor:      "37",
		GitVersion: kubeGitVersion + "+minik-" + s.cfg.Version,
		GoVersion:  runtime.Version(),
		Compiler:   runtime.Compiler,
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	})
}
