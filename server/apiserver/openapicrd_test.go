package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/client-go/openapi"
	"k8s.io/kube-openapi/pkg/validation/spec"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
	"k8s.io/utils/ptr"
)

// TestOpenAPIV2CustomResources checks that /openapi/v2 publishes each
// served version of a CRD as a definition equal to its schema converted as
// upstream converts it, plus apiVersion, kind and metadata, and drops it
// once the CRD is gone; the ETag changes with it.
func TestOpenAPIV2CustomResources(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	before := ts.v2(t)
	crd := ts.establish(t, widgetCRD(t))
	var sw spec.Swagger
	etag := ts.getV2(t, &sw)
	if etag == before {
		t.Errorf("ETag %s did not change with a new CRD", etag)
	}
	def, ok := sw.Definitions["com.example.v1.Widget"]
	if !ok {
		t.Fatalf("/openapi/v2 lacks com.example.v1.Widget")
	}
	for _, p := range []string{"apiVersion", "kind", "metadata"} {
		if _, ok := def.Properties[p]; !ok {
			t.Errorf("definition lacks property %s", p)
		}
	}
	gvk, _ := def.Extensions["x-kubernetes-group-version-kind"].([]any)
	if len(gvk) != 1 {
		t.Errorf("x-kubernetes-group-version-kind = %v, want one entry", def.Extensions["x-kubernetes-group-version-kind"])
	}
	delete(def.Properties, "apiVersion")
	delete(def.Properties, "kind")
	delete(def.Properties, "metadata")
	delete(def.Extensions, "x-kubernetes-group-version-kind")
	want := convertForV2(t, crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
	// An int-or-string field has no type in OpenAPI v2, which has no
	// type lists; the conversion clients use gives it both types.
	port := want.Properties["spec"].Properties["port"]
	if !slices.Equal(port.Type, []string{"integer", "string"}) {
		t.Fatalf("spec.port converts to type %v", port.Type)
	}
	port.Type = nil
	want.Properties["spec"].Properties["port"] = port
	// An object that keeps unknown fields is published untyped in v2, as
	// upstream does: kubectl would otherwise refuse its fields.
	for _, f := range []string{"extra", "template"} {
		p := want.Properties["spec"].Properties[f]
		p.Type = nil
		want.Properties["spec"].Properties[f] = p
	}
	if !apiequality.Semantic.DeepEqual(want, def) {
		a, _ := json.Marshal(def)
		b, _ := json.Marshal(want)
		t.Errorf("definition =\n%s\nwant\n%s", a, b)
	}

	if err := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete CRD: %v", err)
	}
	for {
		var after spec.Swagger
		ts.getV2(t, &after)
		if _, ok := after.Definitions["com.example.v1.Widget"]; !ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the definition stayed after the CRD was deleted")
		default:
		}
	}
}

// v2 returns the ETag of /openapi/v2.
func (ts *testServer) v2(t *testing.T) string {
	var sw spec.Swagger
	return ts.getV2(t, &sw)
}

func (ts *testServer) getV2(t *testing.T, sw *spec.Swagger) string {
	t.Helper()
	resp, err := http.Get(ts.url + "/openapi/v2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(sw); err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("ETag")
}

// convertForV2 converts a CRD schema the way clients compare it with the
// published definition.
func convertForV2(t *testing.T, in *apiextensionsv1.JSONSchemaProps) spec.Schema {
	t.Helper()
	internal := apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(in, &internal, nil); err != nil {
		t.Fatal(err)
	}
	out := spec.Schema{}
	post := validation.StripUnsupportedFormatsPostProcessorForVersion(environment.DefaultCompatibilityVersion())
	if err := validation.ConvertJSONSchemaPropsWithPostProcess(&internal, &out, post); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(out)
	var round spec.Schema
	if err := json.Unmarshal(data, &round); err != nil {
		t.Fatal(err)
	}
	return round
}

// TestOpenAPICustomResourceKindProperties: kubectl explain of a custom
// kind shows apiVersion, kind and metadata beside its own fields (OpenAPI
// v3, ObjectMeta included in the group's document), and a CRD that keeps
// unknown fields at its root is published in OpenAPI v2 as only "an
// object", so kubectl's client-side validation lets any field through.
func TestOpenAPICustomResourceKindProperties(t *testing.T) {
	ts := newTestServer(t)
	ts.establish(t, widgetCRD(t))
	open := widgetCRD(t)
	open.Name, open.Spec.Names = "blobs.example.com", apiextensionsv1.CustomResourceDefinitionNames{Plural: "blobs", Singular: "blob", Kind: "Blob"}
	for i := range open.Spec.Versions {
		open.Spec.Versions[i].Subresources = nil
		open.Spec.Versions[i].SelectableFields = nil
		open.Spec.Versions[i].AdditionalPrinterColumns = nil
		open.Spec.Versions[i].Schema = &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object", XPreserveUnknownFields: ptr.To(true)}}
	}
	ts.establish(t, open)

	client := openapi.NewClient(ts.jsonClient(t).Discovery().RESTClient())
	var out bytes.Buffer
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	if err := explainv2.PrintModelDescription(nil, &out, client, gvr, false, 0, "plaintext"); err != nil {
		t.Fatalf("explain widgets: %v", err)
	}
	for _, w := range []string{"KIND:       Widget", "apiVersion\t<string>", "APIVersion defines", "kind\t<string>", "Kind is a string value", "metadata\t<ObjectMeta>", "spec\t<Object>"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("explain widgets lacks %q:\n%s", w, out.String())
		}
	}
	out.Reset()
	if err := explainv2.PrintModelDescription([]string{"metadata", "labels"}, &out, client, gvr, false, 0, "plaintext"); err != nil {
		t.Errorf("explain widgets.metadata.labels: %v", err)
	}

	var sw spec.Swagger
	ts.getV2(t, &sw)
	def, ok := sw.Definitions["com.example.v1.Blob"]
	if !ok {
		t.Fatalf("/openapi/v2 lacks com.example.v1.Blob")
	}
	delete(def.Extensions, "x-kubernetes-group-version-kind")
	want := spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}}}
	if !apiequality.Semantic.DeepEqual(want, def) {
		a, _ := json.Marshal(def)
		t.Errorf("v2 definition of a CRD open at its root = %s, want {\"type\":\"object\"}", a)
	}
}
