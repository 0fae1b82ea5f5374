package apiserver

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

const acceptAggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"

// discoverySummary flattens what a discovery client learned into one line
// per resource, so that two ways of learning it can be compared.
func discoverySummary(t *testing.T, legacy bool, url string) []string {
	t.Helper()
	dc := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: url, QPS: -1})
	dc.UseLegacyDiscovery = legacy
	groups, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("ServerGroupsAndResources(legacy=%v): %v", legacy, err)
	}
	var out []string
	for _, g := range groups {
		out = append(out, fmt.Sprintf("group %q preferred %s", g.Name, g.PreferredVersion.Version))
	}
	for _, l := range lists {
		for _, r := range l.APIResources {
			// The classic list leaves the group and version of a kind
			// that is the list's own implied; aggregated discovery
			// names them.
			kind := l.GroupVersion + "." + r.Kind
			if r.Group != "" || r.Version != "" {
				kind = schema.GroupVersion{Group: r.Group, Version: r.Version}.String() + "." + r.Kind
			}
			out = append(out, fmt.Sprintf("%s %s %s ns=%v verbs=%v short=%v cat=%v",
				l.GroupVersion, r.Name, kind, r.Namespaced, r.Verbs, r.ShortNames, r.Categories))
		}
	}
	sort.Strings(out)
	return out
}

func TestAggregatedDiscoveryMatchesClassic(t *testing.T) {
	ts := newTestServer(t)
	ts.establish(t, widgetCRD(t))
	legacy := discoverySummary(t, true, ts.url)
	aggregated := discoverySummary(t, false, ts.url)
	if diff := cmp.Diff(legacy, aggregated); diff != "" {
		t.Errorf("aggregated discovery differs from the classic documents (-classic +aggregated):\n%s", diff)
	}
	if !slices.Contains(aggregated, `group "example.com" preferred v1`) {
		t.Errorf("discovery lacks the custom group example.com: %v", aggregated)
	}
}

// getAggregated GETs path asking for aggregated discovery first.
func (ts *testServer) getAggregated(t *testing.T, path string) (*apidiscoveryv2.APIGroupDiscoveryList, *http.Response) {
	t.Helper()
	var list apidiscoveryv2.APIGroupDiscoveryList
	req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
	req.Header.Set("Accept", acceptAggregated)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := ts.getJSON(t, path, acceptAggregated, &list); code != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", path, code)
	}
	return &list, resp
}

// findResource returns the entry of resource in group's version v.
func findResource(list *apidiscoveryv2.APIGroupDiscoveryList, group, v, resource string) *apidiscoveryv2.APIResourceDiscovery {
	for _, g := range list.Items {
		for _, gv := range g.Versions {
			for i, r := range gv.Resources {
				if g.Name == group && gv.Version == v && r.Resource == resource {
					return &gv.Resources[i]
				}
			}
		}
	}
	return nil
}

func TestAggregatedDiscoveryContent(t *testing.T) {
	ts := newTestServer(t)
	core, resp := ts.getAggregated(t, "/api")
	wantType := "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	if got := resp.Header.Get("Content-Type"); got != wantType {
		t.Errorf("/api Content-Type = %q, want %q", got, wantType)
	}
	if core.Kind != "APIGroupDiscoveryList" || core.APIVersion != "apidiscovery.k8s.io/v2" || len(core.Items) != 1 {
		t.Fatalf("/api = %s %s with %d groups, want one APIGroupDiscoveryList group", core.APIVersion, core.Kind, len(core.Items))
	}
	pods := findResource(core, "", "v1", "pods")
	if pods == nil {
		t.Fatalf("/api lacks pods")
	}
	want := apidiscoveryv2.APIResourceDiscovery{
		Resource: "pods", SingularResource: "pod", Scope: apidiscoveryv2.ScopeNamespace,
		ResponseKind: &metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Verbs:        []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
		ShortNames:   []string{"po"}, Categories: []string{"all"},
	}
	var subs []string
	for _, s := range pods.Subresources {
		subs = append(subs, s.Subresource)
	}
	for _, s := range []string{"status", "binding", "eviction", "exec", "log", "attach", "portforward", "proxy"} {
		if !slices.Contains(subs, s) {
			t.Errorf("pods subresources = %v, lack %s", subs, s)
		}
	}
	got := *pods
	got.Subresources = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	if core.Items[0].Versions[0].Freshness != apidiscoveryv2.DiscoveryFreshnessCurrent {
		t.Errorf("core v1 freshness = %q, want Current", core.Items[0].Versions[0].Freshness)
	}

	apis, _ := ts.getAggregated(t, "/apis")
	deploy := findResource(apis, "apps", "v1", "deployments")
	if deploy == nil {
		t.Fatalf("/apis lacks apps/v1 deployments")
	}
	i := slices.IndexFunc(deploy.Subresources, func(s apidiscoveryv2.APISubresourceDiscovery) bool { return s.Subresource == "scale" })
	if i < 0 || *deploy.Subresources[i].ResponseKind != (metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}) {
		t.Errorf("deployments subresources = %+v, want scale answering autoscaling/v1 Scale", deploy.Subresources)
	}
	if ns := findResource(core, "", "v1", "namespaces"); ns == nil || ns.Scope != apidiscoveryv2.ScopeCluster {
		t.Errorf("namespaces = %+v, want Cluster scope", ns)
	}
	if findResource(apis, "", "v1", "pods") != nil {
		t.Errorf("/apis lists the core group, which /api serves")
	}
}

func TestAggregatedDiscoveryFollowsCRDs(t *testing.T) {
	ts := newTestServer(t)
	apis, _ := ts.getAggregated(t, "/apis")
	if findResource(apis, "example.com", "v1", "widgets") != nil {
		t.Fatalf("widgets listed before its definition exists")
	}
	crd := ts.establish(t, widgetCRD(t))
	apis, _ = ts.getAggregated(t, "/apis")
	w := findResource(apis, "example.com", "v1", "widgets")
	if w == nil {
		t.Fatalf("/apis lacks widgets after its definition was established")
	}
	if !slices.Equal(w.ShortNames, []string{"wd"}) || !slices.Contains(w.Categories, "gadgets") || w.Scope != apidiscoveryv2.ScopeNamespace {
		t.Errorf("widgets = %+v, want shortName wd, category gadgets, Namespaced", w)
	}
	ctx := testContext(t)
	if err := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete CRD: %v", err)
	}
	for findResource(apis, "example.com", "v1", "widgets") != nil {
		if ctx.Err() != nil {
			t.Fatalf("widgets still listed after its definition was deleted")
		}
		apis, _ = ts.getAggregated(t, "/apis")
	}
}

func TestAggregatedDiscoveryNegotiation(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, accept, wantType string
	}{
		{"v2 first", acceptAggregated, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"},
		{"v2beta1", "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"},
		{"classic first", "application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", "application/json"},
		{"none", "", "application/json"},
		{"unknown version", "application/json;g=apidiscovery.k8s.io;v=v9;as=APIGroupDiscoveryList,application/json", "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, ts.url+"/apis", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
		})
	}

	_, resp := ts.getAggregated(t, "/apis")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("aggregated /apis has no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/apis", nil)
	req.Header.Set("Accept", acceptAggregated)
	req.Header.Set("If-None-Match", etag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET /apis with the current ETag = %d, want 304", resp.StatusCode)
	}
}

func TestDiscoveryPresentAndMissing(t *testing.T) {
	ts := newTestServer(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: ts.url, QPS: -1})
	tests := []struct {
		gvr  schema.GroupVersionResource
		want bool
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, true},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
		{schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}, true},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "please-dont-ever-create-this"}, false},
		{schema.GroupVersionResource{Group: "not-these-apps", Version: "v1", Resource: "deployments"}, false},
	}
	for _, tc := range tests {
		got, err := discovery.IsResourceEnabled(dc, tc.gvr)
		if err != nil || got != tc.want {
			t.Errorf("IsResourceEnabled(%v) = %v, %v; want %v, nil", tc.gvr, got, err, tc.want)
		}
	}
}
