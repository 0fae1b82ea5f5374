package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var widgets = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

// widgetCRD is testdata/widgets-crd.yaml.
func widgetCRD(t testing.TB) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile("testdata/widgets-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatal(err)
	}
	return crd
}

func (ts *testServer) crdClient(t *testing.T) apiextensionsclient.Interface {
	t.Helper()
	return apiextensionsclient.NewForConfigOrDie(&rest.Config{Host: ts.url, QPS: -1})
}

func (ts *testServer) dynamicClient(t *testing.T) dynamic.Interface {
	t.Helper()
	return dynamic.NewForConfigOrDie(&rest.Config{Host: ts.url, QPS: -1})
}

// establish creates crd and waits until its kind is served.
func (ts *testServer) establish(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	ctx := testContext(t)
	c := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions()
	if _, err := c.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create CRD: %v", err)
	}
	for {
		got, err := c.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Get CRD: %v", err)
		}
		if crdCondition(got, apiextensionsv1.Established) == apiextensionsv1.ConditionTrue {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CRD %s not established: %+v", crd.Name, got.Status)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func crdCondition(crd *apiextensionsv1.CustomResourceDefinition, typ apiextensionsv1.CustomResourceDefinitionConditionType) apiextensionsv1.ConditionStatus {
	for _, c := range crd.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// widget is a Widget named name with spec (none if nil).
func widget(name string, spec map[string]interface{}) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]interface{}{"name": name, "labels": map[string]interface{}{"app": name}},
	}}
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}

func TestCRDValidationNamesTheField(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	c := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions()
	cases := []struct {
		name   string
		mutate func(*apiextensionsv1.CustomResourceDefinition)
		field  string
	}{
		{"name not plural.group", func(c *apiextensionsv1.CustomResourceDefinition) { c.Name = "gadgets.example.com" }, "metadata.name"},
		{"two storage versions", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[1].Storage = true }, "spec.versions"},
		{"no storage version", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Storage = false }, "spec.versions"},
		{"bad scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Galaxy" }, "spec.scope"},
		{"non-structural: property without type", func(c *apiextensionsv1.CustomResourceDefinition) {
			spec := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			spec.Properties["color"] = apiextensionsv1.JSONSchemaProps{Description: "no type"}
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = spec
		}, "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[color].type"},
		{"no schema", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[1].Schema = nil }, "spec.versions[1].schema.openAPIV3Schema"},
		{"bad CEL rule", func(c *apiextensionsv1.CustomResourceDefinition) {
			spec := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			spec.XValidations[0].Rule = "self.nosuchfield > 1"
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = spec
		}, "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crd := widgetCRD(t)
			tc.mutate(crd)
			_, err := c.Create(ctx, crd, metav1.CreateOptions{})
			if fields := causeFields(t, err); !slices.Contains(fields, tc.field) {
				t.Errorf("Create: causes %v, want one naming %s (%v)", fields, tc.field, err)
			}
		})
	}
	list, err := c.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("List after refused creates = %d items, %v; want none", len(list.Items), err)
	}
}

func TestCRDDefaultsAndConditions(t *testing.T) {
	ts := newTestServer(t)
	crd := widgetCRD(t)
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["port"] = apiextensionsv1.JSONSchemaProps{XIntOrString: true}
	got := ts.establish(t, crd)
	if got.Spec.Conversion == nil || got.Spec.Conversion.Strategy != apiextensionsv1.NoneConverter {
		t.Errorf("spec.conversion = %+v, want strategy None by default", got.Spec.Conversion)
	}
	if !slices.Equal(got.Status.StoredVersions, []string{"v1"}) {
		t.Errorf("storedVersions = %v, want [v1]", got.Status.StoredVersions)
	}
	if got.Status.AcceptedNames.Plural != "widgets" || got.Status.AcceptedNames.Kind != "Widget" {
		t.Errorf("acceptedNames = %+v", got.Status.AcceptedNames)
	}
	if st := crdCondition(got, apiextensionsv1.NamesAccepted); st != apiextensionsv1.ConditionTrue {
		t.Errorf("NamesAccepted = %q, want True", st)
	}

	// A second definition of the group claiming the same kind is not
	// accepted, and not established.
	other := widgetCRD(t)
	other.Name, other.Spec.Names.Plural, other.Spec.Names.Singular, other.Spec.Names.ShortNames = "gizmos.example.com", "gizmos", "gizmo", nil
	ctx := testContext(t)
	c := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions()
	if _, err := c.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create gizmos: %v", err)
	}
	for {
		g, err := c.Get(ctx, other.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st := crdCondition(g, apiextensionsv1.NamesAccepted); st != "" {
			if st != apiextensionsv1.ConditionFalse || crdCondition(g, apiextensionsv1.Established) == apiextensionsv1.ConditionTrue {
				t.Errorf("conflicting CRD conditions = %+v, want NamesAccepted False and not Established", g.Status.Conditions)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("conflicting CRD got no conditions")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestCustomResourceSchema(t *testing.T) {
	ts := newTestServer(t)
	ts.establish(t, widgetCRD(t))
	ctx := testContext(t)
	ws := ts.dynamicClient(t).Resource(widgets).Namespace("default")

	// Defaults are applied, unknown fields pruned, preserved ones kept.
	w := widget("a", map[string]interface{}{
		"replicas": int64(2), "unknown": "dropped", "port": "http",
		"extra": map[string]interface{}{"anything": "kept"},
	})
	w.Object["status"] = map[string]interface{}{"replicas": int64(5)}
	out, err := ws.Create(ctx, w, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	spec, _, _ := unstructured.NestedMap(out.Object, "spec")
	if spec["color"] != "blue" || spec["maxReplicas"] != int64(10) {
		t.Errorf("spec = %v, want defaults color blue and maxReplicas 10", spec)
	}
	if _, ok := spec["unknown"]; ok {
		t.Errorf("spec = %v, want unknown field pruned", spec)
	}
	if v, _, _ := unstructured.NestedString(out.Object, "spec", "extra", "anything"); v != "kept" {
		t.Errorf("spec.extra.anything = %q, want kept (x-kubernetes-preserve-unknown-fields)", v)
	}
	if _, ok := out.Object["status"]; ok {
		t.Errorf("status = %v, want it dropped on create (status subresource)", out.Object["status"])
	}
	if out.GetGeneration() != 1 || out.GetUID() == "" || out.GetResourceVersion() == "" {
		t.Errorf("metadata = %+v, want generation 1, a uid and a resourceVersion", out.Object["metadata"])
	}

	cases := []struct {
		name  string
		spec  map[string]interface{}
		field string
	}{
		{"CEL rule", map[string]interface{}{"replicas": int64(20), "maxReplicas": int64(3)}, "spec"},
		{"minimum", map[string]interface{}{"replicas": int64(-1)}, "spec.replicas"},
		{"type", map[string]interface{}{"color": int64(3)}, "spec.color"},
		{"list map keys unique", map[string]interface{}{"ports": []interface{}{
			map[string]interface{}{"name": "x", "number": int64(1)}, map[string]interface{}{"name": "x", "number": int64(2)},
		}}, "spec.ports[1]"},
		{"embedded resource needs kind", map[string]interface{}{"template": map[string]interface{}{
			"apiVersion": "v1", "metadata": map[string]interface{}{"name": "x"},
		}}, "spec.template.kind"},
		{"int-or-string", map[string]interface{}{"port": true}, "spec.port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ws.Create(ctx, widget("bad", tc.spec), metav1.CreateOptions{})
			if fields := causeFields(t, err); !slices.Contains(fields, tc.field) {
				t.Errorf("Create: causes %v, want one naming %s (%v)", fields, tc.field, err)
			}
		})
	}
	_, err = ws.Create(ctx, widget("strict", map[string]interface{}{"colour": "red"}), metav1.CreateOptions{FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.colour"`) {
		t.Errorf("Create with an unknown field and fieldValidation=Strict = %v, want 400 naming spec.colour", err)
	}
	if _, err := ws.Get(ctx, "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get of a refused object = %v, want NotFound", err)
	}
	// Unknown metadata fields, of the object and of an embedded one.
	meta := widget("meta", map[string]interface{}{"template": map[string]interface{}{
		"apiVersion": "v1", "kind": "Sub", "metadata": map[string]interface{}{"name": "sub", "unknownSubMeta": "x"},
	}})
	meta.Object["metadata"].(map[string]interface{})["unknownMeta"] = "x"
	_, err = ws.Create(ctx, meta, metav1.CreateOptions{FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "metadata.unknownMeta"`) ||
		!strings.Contains(err.Error(), `unknown field "spec.template.metadata.unknownSubMeta"`) {
		t.Errorf("Create with unknown metadata fields and fieldValidation=Strict = %v, want 400 naming both", err)
	}
	body, _ := json.Marshal(meta.Object)
	_, err = ws.Patch(ctx, "meta", types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "m", FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `.metadata.unknownMeta: field not declared in schema`) {
		t.Errorf("Apply with unknown metadata fields and fieldValidation=Strict = %v, want 400 naming .metadata.unknownMeta", err)
	}
	if _, err := ws.Patch(ctx, "meta", types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "m"}); err != nil {
		t.Errorf("Apply with unknown metadata fields and fieldValidation unset = %v, want success (with warnings)", err)
	}
}

func TestCustomResourceVerbs(t *testing.T) {
	ts := newTestServer(t)
	ts.establish(t, widgetCRD(t))
	ctx := testContext(t)
	ws := ts.dynamicClient(t).Resource(widgets).Namespace("default")

	wt, err := ws.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer wt.Stop()
	for _, w := range []*unstructured.Unstructured{
		widget("red", map[string]interface{}{"color": "red"}),
		widget("green", map[string]interface{}{"color": "green", "replicas": int64(3)}),
	} {
		if _, err := ws.Create(ctx, w, metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create %s: %v", w.GetName(), err)
		}
	}
	for _, want := range []string{"ADDED red", "ADDED green"} {
		if got := eventName(nextEvent(t, wt)); got != want {
			t.Errorf("watch event = %s, want %s", got, want)
		}
	}
	if _, err := ws.Create(ctx, widget("red", nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second Create = %v, want AlreadyExists", err)
	}

	// Selectors: labels, metadata.name and a selectable field.
	for sel, want := range map[string]string{
		"labelSelector=app%3Dgreen":                                   "green",
		"fieldSelector=metadata.name%3Dred":                           "red",
		"fieldSelector=spec.color%3Dgreen":                            "green",
		"fieldSelector=metadata.namespace%3Ddefault,spec.color%3Dred": "red",
	} {
		opts := metav1.ListOptions{}
		k, v, _ := strings.Cut(sel, "=")
		v = strings.ReplaceAll(v, "%3D", "=")
		if k == "labelSelector" {
			opts.LabelSelector = v
		} else {
			opts.FieldSelector = v
		}
		list, err := ws.List(ctx, opts)
		if err != nil || len(list.Items) != 1 || list.Items[0].GetName() != want {
			t.Errorf("List(%s) = %v, %v; want only %s", sel, list, err, want)
		}
	}
	if _, err := ws.List(ctx, metav1.ListOptions{FieldSelector: "spec.replicas=3"}); !apierrors.IsBadRequest(err) {
		t.Errorf("List by a field that is not selectable = %v, want 400", err)
	}

	// Patches: merge and JSON; strategic merge is 415 as upstream.
	p, err := ws.Patch(ctx, "red", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{})
	if err != nil || p.GetGeneration() != 2 {
		t.Fatalf("merge Patch = %v, %v; want generation 2", p, err)
	}
	p, err = ws.Patch(ctx, "red", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/color","value":"crimson"}]`), metav1.PatchOptions{})
	if c, _, _ := unstructured.NestedString(p.Object, "spec", "color"); err != nil || c != "crimson" {
		t.Errorf("JSON Patch = color %q, %v; want crimson", c, err)
	}
	_, err = ws.Patch(ctx, "red", types.StrategicMergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{})
	if st, ok := err.(apierrors.APIStatus); !ok || st.Status().Code != http.StatusUnsupportedMediaType {
		t.Errorf("strategic merge Patch = %v, want 415", err)
	}

	// Update with a stale resourceVersion conflicts.
	stale := p.DeepCopy()
	stale.SetResourceVersion("1")
	if _, err := ws.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("Update with a stale resourceVersion = %v, want Conflict", err)
	}

	// Status: the main resource cannot write it, the subresource can.
	cur, _ := ws.Get(ctx, "red", metav1.GetOptions{})
	cur.Object["status"] = map[string]interface{}{"replicas": int64(4), "selector": "app=red"}
	if u, err := ws.Update(ctx, cur, metav1.UpdateOptions{}); err != nil || u.Object["status"] != nil {
		t.Errorf("Update of status through the main resource = %v, %v; want status unchanged (none)", u, err)
	}
	cur, _ = ws.Get(ctx, "red", metav1.GetOptions{})
	cur.Object["status"] = map[string]interface{}{"replicas": int64(4), "selector": "app=red"}
	if u, err := ws.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil || u.GetGeneration() != cur.GetGeneration() {
		t.Fatalf("UpdateStatus = %v, %v; want status written and generation kept", u, err)
	}

	// Scale.
	sc, err := ws.Get(ctx, "red", metav1.GetOptions{}, "scale")
	if err != nil {
		t.Fatalf("Get scale: %v", err)
	}
	if r, _, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas"); r != 4 {
		t.Errorf("scale spec.replicas = %d, want 4", r)
	}
	if s, _, _ := unstructured.NestedString(sc.Object, "status", "selector"); s != "app=red" {
		t.Errorf("scale status.selector = %q, want app=red", s)
	}
	if _, err := ws.Patch(ctx, "red", types.MergePatchType, []byte(`{"spec":{"replicas":6}}`), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatalf("Patch scale: %v", err)
	}
	cur, _ = ws.Get(ctx, "red", metav1.GetOptions{})
	if r, _, _ := unstructured.NestedInt64(cur.Object, "spec", "replicas"); r != 6 {
		t.Errorf("spec.replicas after scaling = %d, want 6", r)
	}

	// Another served version reads the same objects ("None" conversion).
	beta := ts.dynamicClient(t).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1beta1", Resource: "widgets"}).Namespace("default")
	b, err := beta.Get(ctx, "red", metav1.GetOptions{})
	if err != nil || b.GetAPIVersion() != "example.com/v1beta1" || b.GetUID() != cur.GetUID() {
		t.Errorf("Get in v1beta1 = %v, %v; want the same object with apiVersion example.com/v1beta1", b, err)
	}

	if err := ws.Delete(ctx, "red", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := ws.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("DeleteCollection: %v", err)
	}
	list, err := ws.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("List after deletes = %v, %v; want none", list, err)
	}
}

// getJSON GETs path from ts with accept, decoding the body into v.
func (ts *testServer) getJSON(t *testing.T, path, accept string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func TestCustomResourceDiscoveryAndTable(t *testing.T) {
	ts := newTestServer(t)
	ts.establish(t, widgetCRD(t))
	ctx := testContext(t)
	ws := ts.dynamicClient(t).Resource(widgets).Namespace("default")
	if _, err := ws.Create(ctx, widget("a", map[string]interface{}{"color": "red", "replicas": int64(2)}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var groups metav1.APIGroupList
	ts.getJSON(t, "/apis", "", &groups)
	i := slices.IndexFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "example.com" })
	if i < 0 || groups.Groups[i].PreferredVersion.Version != "v1" || len(groups.Groups[i].Versions) != 2 {
		t.Fatalf("/apis = %+v, want example.com with v1 preferred of two versions", groups.Groups)
	}
	var resources metav1.APIResourceList
	ts.getJSON(t, "/apis/example.com/v1", "", &resources)
	var names []string
	for _, r := range resources.APIResources {
		names = append(names, r.Name)
		if r.Name == "widgets" {
			if !slices.Equal(r.ShortNames, []string{"wd"}) || !slices.Contains(r.Categories, "gadgets") || !r.Namespaced || len(r.Verbs) != 8 {
				t.Errorf("widgets discovery = %+v", r)
			}
		}
	}
	if !slices.Equal(names, []string{"widgets", "widgets/status", "widgets/scale"}) {
		t.Errorf("/apis/example.com/v1 resources = %v", names)
	}

	var openapi struct {
		Paths map[string]struct{ ServerRelativeURL string }
	}
	ts.getJSON(t, "/openapi/v3", "", &openapi)
	if _, ok := openapi.Paths["apis/example.com/v1"]; !ok {
		t.Errorf("/openapi/v3 paths lack apis/example.com/v1: %v", openapi.Paths)
	}
	var doc struct {
		Paths      map[string]any
		Components struct{ Schemas map[string]map[string]any }
	}
	ts.getJSON(t, "/openapi/v3/apis/example.com/v1", "", &doc)
	if _, ok := doc.Paths["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]; !ok {
		t.Errorf("/openapi/v3/apis/example.com/v1 paths = %v, want the widgets path", doc.Paths)
	}
	if sch, ok := doc.Components.Schemas["com.example.v1.Widget"]; !ok || sch["x-kubernetes-group-version-kind"] == nil {
		t.Errorf("/openapi/v3/apis/example.com/v1 schemas = %v, want com.example.v1.Widget with its kind", doc.Components.Schemas)
	}

	var table metav1.Table
	ts.getJSON(t, "/apis/example.com/v1/namespaces/default/widgets", "application/json;as=Table;v=v1;g=meta.k8s.io", &table)
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if !slices.Equal(cols, []string{"Name", "Color", "Replicas"}) || len(table.Rows) != 1 {
		t.Fatalf("table columns = %v, rows %d; want Name Color Replicas and one row", cols, len(table.Rows))
	}
	if cells := table.Rows[0].Cells; cells[0] != "a" || cells[1] != "red" || cells[2] != float64(2) {
		t.Errorf("table row = %v, want a red 2", cells)
	}
}

func TestDeleteCRDDeletesObjects(t *testing.T) {
	ts := newTestServer(t)
	crd := ts.establish(t, widgetCRD(t))
	ctx := testContext(t)
	ws := ts.dynamicClient(t).Resource(widgets).Namespace("default")
	for _, n := range []string{"a", "b"} {
		if _, err := ws.Create(ctx, widget(n, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions()
	w, err := c.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + crd.Name, ResourceVersion: crd.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := c.Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete CRD: %v", err)
	}
	sawTerminating := false
	for ev := range w.ResultChan() {
		got := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
		if ev.Type == watch.Modified && crdCondition(got, apiextensionsv1.Terminating) == apiextensionsv1.ConditionTrue &&
			slices.Contains(got.Finalizers, "customresourcecleanup.apiextensions.k8s.io") {
			sawTerminating = true
		}
		if ev.Type == watch.Deleted {
			break
		}
	}
	if !sawTerminating {
		t.Errorf("the CRD was never seen Terminating with the cleanup finalizer")
	}
	if n := len(ts.storeKeys(t, "/registry/example.com/widgets/")); n != 0 {
		t.Errorf("%d widgets stored after the CRD was deleted, want 0", n)
	}
	if code := ts.getJSON(t, "/apis/example.com/v1", "", nil); code != http.StatusNotFound {
		t.Errorf("GET /apis/example.com/v1 after the CRD was deleted = %d, want 404", code)
	}
}

func (ts *testServer) storeKeys(t *testing.T, prefix string) []string {
	t.Helper()
	kvs, _, err := ts.store.List(context.Background(), prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	return keys
}

func TestNamespaceDeletionDeletesCustomObjects(t *testing.T) {
	ts := newTestServer(t)
	ts.establish(t, widgetCRD(t))
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ws := ts.dynamicClient(t).Resource(widgets).Namespace("team")
	if _, err := ws.Create(ctx, widget("a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ts.client.CoreV1().Namespaces().Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := ts.client.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("namespace team not deleted: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if keys := ts.storeKeys(t, "/registry/example.com/widgets/team/"); len(keys) != 0 {
		t.Errorf("widgets left in a deleted namespace: %v", keys)
	}
}

func TestCustomResourceDefaultsFromStorage(t *testing.T) {
	ts := newTestServer(t)
	crd := ts.establish(t, widgetCRD(t))
	ctx := testContext(t)
	ws := ts.dynamicClient(t).Resource(widgets).Namespace("default")
	if _, err := ws.Create(ctx, widget("a", map[string]interface{}{"color": "red"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A default added to the definition shows on objects written before.
	c := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions()
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	spec.Properties["shape"] = apiextensionsv1.JSONSchemaProps{Type: "string", Default: &apiextensionsv1.JSON{Raw: []byte(`"round"`)}}
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = spec
	if _, err := c.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("Update CRD: %v", err)
	}
	for {
		got, err := ws.Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s, _, _ := unstructured.NestedString(got.Object, "spec", "shape"); s == "round" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("spec.shape of an object written before the default was added = %v, want round", got.Object["spec"])
		case <-time.After(10 * time.Millisecond):
		}
	}
	list, err := ws.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if s, _, _ := unstructured.NestedString(list.Items[0].Object, "spec", "shape"); s != "round" {
		t.Errorf("listed spec = %v, want shape defaulted to round", list.Items[0].Object["spec"])
	}
}

func TestClusterScopedCustomResource(t *testing.T) {
	ts := newTestServer(t)
	crd := widgetCRD(t)
	crd.Spec.Scope = apiextensionsv1.ClusterScoped
	ts.establish(t, crd)
	ctx := testContext(t)
	ws := ts.dynamicClient(t).Resource(widgets)
	out, err := ws.Create(ctx, widget("global", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if out.GetNamespace() != "" {
		t.Errorf("namespace of a cluster-scoped object = %q, want none", out.GetNamespace())
	}
	if _, err := ts.dynamicClient(t).Resource(widgets).Namespace("default").Create(ctx, widget("local", nil), metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Create under a namespace for a cluster-scoped kind = %v, want 404", err)
	}
	if _, err := ws.List(ctx, metav1.ListOptions{FieldSelector: "metadata.namespace=default"}); !apierrors.IsBadRequest(err) {
		t.Errorf("List by metadata.namespace of a cluster-scoped kind = %v, want 400", err)
	}
	if err := ws.Delete(ctx, "global", metav1.DeleteOptions{}); err != nil {
		t.Errorf("Delete: %v", err)
	}
}
