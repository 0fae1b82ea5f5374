package apiserver

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// convertFunc converts one object (a JSON map) to apiVersion.
type convertFunc func(obj map[string]interface{}, apiVersion string) map[string]interface{}

// conversionHook is an HTTPS conversion webhook; answer may rewrite the
// response before it is sent.
type conversionHook struct {
	*httptest.Server
	calls  atomic.Int64
	answer atomic.Pointer[func(*apiextensionsv1.ConversionReview)]
}

func newConversionHook(t *testing.T, convert convertFunc) *conversionHook {
	t.Helper()
	h := &conversionHook{}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.calls.Add(1)
		review := &apiextensionsv1.ConversionReview{}
		if err := json.NewDecoder(r.Body).Decode(review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		resp := &apiextensionsv1.ConversionResponse{UID: review.Request.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
		for _, raw := range review.Request.Objects {
			var obj map[string]interface{}
			if err := json.Unmarshal(raw.Raw, &obj); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			out, _ := json.Marshal(convert(obj, review.Request.DesiredAPIVersion))
			resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: out})
		}
		review.Request, review.Response = nil, resp
		if f := h.answer.Load(); f != nil {
			(*f)(review)
		}
		json.NewEncoder(w).Encode(review)
	}))
	t.Cleanup(h.Close)
	return h
}

// hostPortConversion converts between v1 (spec.hostPort "host:port") and
// v2 (spec.host, spec.port), as the conformance test's webhook does.
func hostPortConversion(obj map[string]interface{}, apiVersion string) map[string]interface{} {
	spec, _ := obj["spec"].(map[string]interface{})
	if spec == nil {
		spec = map[string]interface{}{}
	}
	switch apiVersion {
	case "stable.example.com/v2":
		if hp, ok := spec["hostPort"].(string); ok {
			host, port, _ := strings.Cut(hp, ":")
			delete(spec, "hostPort")
			spec["host"], spec["port"] = host, port
		}
	case "stable.example.com/v1":
		if host, ok := spec["host"].(string); ok {
			spec["hostPort"] = host + ":" + spec["port"].(string)
			delete(spec, "host")
			delete(spec, "port")
		}
	}
	obj["spec"] = spec
	obj["apiVersion"] = apiVersion
	return obj
}

// hostsCRD is a definition of Host in v1 (storage) and v2, converted by h.
func hostsCRD(h *conversionHook) *apiextensionsv1.CustomResourceDefinition {
	version := func(name string, storage bool, props ...string) apiextensionsv1.CustomResourceDefinitionVersion {
		spec := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{}}
		for _, p := range props {
			spec.Properties[p] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		}
		return apiextensionsv1.CustomResourceDefinitionVersion{
			Name: name, Served: true, Storage: storage,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": spec},
			}},
		}
	}
	u := h.URL + "/convert"
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw})
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "hosts.stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "stable.example.com",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "hosts", Singular: "host", Kind: "Host", ListKind: "HostList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				version("v1", true, "hostPort"),
				version("v2", false, "host", "port"),
			},
			Conversion: &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: &u, CABundle: ca},
					ConversionReviewVersions: []string{"v1", "v1beta1"},
				},
			},
		},
	}
}

func hostsIn(dc dynamic.Interface, version string) dynamic.ResourceInterface {
	return dc.Resource(schema.GroupVersionResource{Group: "stable.example.com", Version: version, Resource: "hosts"}).Namespace("default")
}

func hostV1(name, hostPort string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "stable.example.com/v1", "kind": "Host",
		"metadata": map[string]interface{}{"name": name},
		"spec":     map[string]interface{}{"hostPort": hostPort},
	}}
}

func hostV2(name, host, port string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "stable.example.com/v2", "kind": "Host",
		"metadata": map[string]interface{}{"name": name},
		"spec":     map[string]interface{}{"host": host, "port": port},
	}}
}

// storedAPIVersion is the apiVersion of the stored form of Host name.
func (ts *testServer) storedAPIVersion(t *testing.T, name string) string {
	t.Helper()
	res, ok := ts.lookupIn(schema.GroupVersion{Group: "stable.example.com", Version: "v1"}, "hosts")
	if !ok {
		t.Fatal("hosts are not served")
	}
	kv, err := ts.store.Get(testContext(t), storageKey(res, "default", name))
	if err != nil {
		t.Fatalf("store.Get(%s): %v", name, err)
	}
	var stored struct {
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(kv.Value, &stored); err != nil {
		t.Fatal(err)
	}
	return stored.APIVersion
}

func TestConversionWebhookReadsAndWritesInEitherVersion(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	h := newConversionHook(t, hostPortConversion)
	ts.establish(t, hostsCRD(h))
	dc := ts.dynamicClient(t)

	if _, err := hostsIn(dc, "v1").Create(ctx, hostV1("one", "localhost:8080"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create v1: %v", err)
	}
	got, err := hostsIn(dc, "v2").Get(ctx, "one", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get v2: %v", err)
	}
	want := map[string]interface{}{"host": "localhost", "port": "8080"}
	if diff := cmp.Diff(want, got.Object["spec"]); diff != "" || got.GetAPIVersion() != "stable.example.com/v2" {
		t.Errorf("Get v2 = %s %v (-want +got spec):\n%s", got.GetAPIVersion(), got.Object["spec"], diff)
	}
	if got.GetUID() == "" || got.GetResourceVersion() == "" || got.GetCreationTimestamp() == (metav1.Time{}) {
		t.Errorf("Get v2 metadata = %v, want the stored uid, resourceVersion and creationTimestamp", got.Object["metadata"])
	}

	// Written in v2, stored in v1.
	if _, err := hostsIn(dc, "v2").Create(ctx, hostV2("two", "example.org", "443"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create v2: %v", err)
	}
	if v := ts.storedAPIVersion(t, "two"); v != "stable.example.com/v1" {
		t.Errorf("stored apiVersion of two = %q, want stable.example.com/v1", v)
	}
	got, err = hostsIn(dc, "v1").Get(ctx, "two", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get v1: %v", err)
	}
	if hp, _, _ := unstructured.NestedString(got.Object, "spec", "hostPort"); hp != "example.org:443" {
		t.Errorf("Get v1 of two: spec = %v, want hostPort example.org:443", got.Object["spec"])
	}

	// An update in v2 is converted to v1 before it is stored.
	cur, err := hostsIn(dc, "v2").Get(ctx, "two", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedField(cur.Object, "8443", "spec", "port")
	if _, err := hostsIn(dc, "v2").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("Update v2: %v", err)
	}
	got, err = hostsIn(dc, "v1").Get(ctx, "two", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hp, _, _ := unstructured.NestedString(got.Object, "spec", "hostPort"); hp != "example.org:8443" {
		t.Errorf("Get v1 after update in v2: spec = %v, want hostPort example.org:8443", got.Object["spec"])
	}

	// Watches convert too.
	w, err := hostsIn(dc, "v2").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch v2: %v", err)
	}
	defer w.Stop()
	seen := map[string]interface{}{}
	for len(seen) < 2 {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Added {
				t.Fatalf("watch event %s %v, want ADDED", ev.Type, ev.Object)
			}
			u := ev.Object.(*unstructured.Unstructured)
			seen[u.GetName()] = u.Object["spec"]
		case <-ctx.Done():
			t.Fatalf("watch v2: saw %v before the timeout", seen)
		}
	}
	wantSeen := map[string]interface{}{
		"one": map[string]interface{}{"host": "localhost", "port": "8080"},
		"two": map[string]interface{}{"host": "example.org", "port": "8443"},
	}
	if diff := cmp.Diff(wantSeen, seen); diff != "" {
		t.Errorf("watch v2 specs (-want +got):\n%s", diff)
	}
	if h.calls.Load() == 0 {
		t.Error("the webhook was never called")
	}
}

func TestConversionWebhookListsObjectsStoredInSeveralVersions(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	h := newConversionHook(t, hostPortConversion)
	crd := ts.establish(t, hostsCRD(h))
	dc := ts.dynamicClient(t)
	if _, err := hostsIn(dc, "v1").Create(ctx, hostV1("old", "localhost:8080"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Switch the storage version to v2.
	crd.Spec.Versions[0].Storage, crd.Spec.Versions[1].Storage = false, true
	if _, err := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("Update CRD: %v", err)
	}
	for {
		res, ok := ts.lookupIn(schema.GroupVersion{Group: "stable.example.com", Version: "v1"}, "hosts")
		if ok && res.Custom.StorageVersion == "v2" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the storage version did not become v2")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := hostsIn(dc, "v2").Create(ctx, hostV2("new", "localhost", "9090"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, b := ts.storedAPIVersion(t, "old"), ts.storedAPIVersion(t, "new"); a != "stable.example.com/v1" || b != "stable.example.com/v2" {
		t.Fatalf("stored apiVersions = %s, %s, want stable.example.com/v1, stable.example.com/v2", a, b)
	}
	for _, tc := range []struct {
		version string
		want    map[string]interface{}
	}{
		{"v1", map[string]interface{}{
			"old": map[string]interface{}{"hostPort": "localhost:8080"},
			"new": map[string]interface{}{"hostPort": "localhost:9090"},
		}},
		{"v2", map[string]interface{}{
			"old": map[string]interface{}{"host": "localhost", "port": "8080"},
			"new": map[string]interface{}{"host": "localhost", "port": "9090"},
		}},
	} {
		list, err := hostsIn(dc, tc.version).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("List %s: %v", tc.version, err)
		}
		got := map[string]interface{}{}
		for _, it := range list.Items {
			if it.GetAPIVersion() != "stable.example.com/"+tc.version {
				t.Errorf("List %s: item %s has apiVersion %s", tc.version, it.GetName(), it.GetAPIVersion())
			}
			got[it.GetName()] = it.Object["spec"]
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("List %s specs (-want +got):\n%s", tc.version, diff)
		}
	}
}

func TestConversionWebhookBadAnswers(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	h := newConversionHook(t, hostPortConversion)
	ts.establish(t, hostsCRD(h))
	dc := ts.dynamicClient(t)
	if _, err := hostsIn(dc, "v1").Create(ctx, hostV1("one", "localhost:8080"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(obj map[string]interface{})) func(*apiextensionsv1.ConversionReview) {
		return func(r *apiextensionsv1.ConversionReview) {
			var obj map[string]interface{}
			json.Unmarshal(r.Response.ConvertedObjects[0].Raw, &obj)
			f(obj)
			r.Response.ConvertedObjects[0].Raw, _ = json.Marshal(obj)
		}
	}
	meta := func(obj map[string]interface{}) map[string]interface{} {
		return obj["metadata"].(map[string]interface{})
	}
	cases := []struct {
		name   string
		answer func(*apiextensionsv1.ConversionReview)
		msg    string // in the 500's message
	}{
		{"failure with a message", func(r *apiextensionsv1.ConversionReview) {
			r.Response.Result = metav1.Status{Status: metav1.StatusFailure, Message: "cannot convert hosts today"}
		}, "cannot convert hosts today"},
		{"failure without a message", func(r *apiextensionsv1.ConversionReview) {
			r.Response.Result = metav1.Status{Status: metav1.StatusFailure}
		}, `response.result.status was "Failure"`},
		{"another uid", func(r *apiextensionsv1.ConversionReview) { r.Response.UID = "other" }, `expected response.uid=`},
		{"no response", func(r *apiextensionsv1.ConversionReview) { r.Response = nil }, "no response provided"},
		{"two objects for one", func(r *apiextensionsv1.ConversionReview) {
			r.Response.ConvertedObjects = append(r.Response.ConvertedObjects, r.Response.ConvertedObjects[0])
		}, "returned 2 objects, expected 1"},
		{"wrong apiVersion", edit(func(obj map[string]interface{}) { obj["apiVersion"] = "stable.example.com/v1" }), "invalid groupVersion"},
		{"renamed", edit(func(obj map[string]interface{}) { meta(obj)["name"] = "other" }), "must have the same name"},
		{"new uid", edit(func(obj map[string]interface{}) { meta(obj)["uid"] = "x" }), "must have the same UID"},
		{"bad label", edit(func(obj map[string]interface{}) {
			meta(obj)["labels"] = map[string]interface{}{"bad key!": "v"}
		}), "metadata.labels"},
		{"not a review", func(r *apiextensionsv1.ConversionReview) { r.Kind = "AdmissionReview" }, "expected webhook response of apiextensions.k8s.io/v1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.answer
			h.answer.Store(&f)
			defer h.answer.Store(nil)
			_, err := hostsIn(dc, "v2").Get(ctx, "one", metav1.GetOptions{})
			var se *apierrors.StatusError
			if !errors.As(err, &se) || se.ErrStatus.Code != http.StatusInternalServerError {
				t.Fatalf("Get v2 = %v, want a 500 Status", err)
			}
			if !strings.Contains(se.ErrStatus.Message, tc.msg) || !strings.HasPrefix(se.ErrStatus.Message, "Internal error occurred: conversion webhook for stable.example.com/v1, Kind=Host failed: ") {
				t.Errorf("Get v2 message = %q, want it to name the conversion webhook and hold %q", se.ErrStatus.Message, tc.msg)
			}
		})
	}

	t.Run("labels and annotations kept, other metadata restored", func(t *testing.T) {
		f := edit(func(obj map[string]interface{}) {
			m := meta(obj)
			m["labels"] = map[string]interface{}{"converted": "yes"}
			m["annotations"] = map[string]interface{}{"example.com/by": "webhook"}
			m["generation"] = int64(99)
			m["finalizers"] = []interface{}{"example.com/f"}
		})
		h.answer.Store(&f)
		defer h.answer.Store(nil)
		got, err := hostsIn(dc, "v2").Get(ctx, "one", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Get v2: %v", err)
		}
		if diff := cmp.Diff(map[string]string{"converted": "yes"}, got.GetLabels()); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"example.com/by": "webhook"}, got.GetAnnotations()); diff != "" {
			t.Errorf("annotations (-want +got):\n%s", diff)
		}
		if got.GetGeneration() != 1 || len(got.GetFinalizers()) != 0 {
			t.Errorf("generation %d, finalizers %v, want the stored 1 and none", got.GetGeneration(), got.GetFinalizers())
		}
	})

	t.Run("create in v2 fails whole", func(t *testing.T) {
		f := func(r *apiextensionsv1.ConversionReview) {
			r.Response.Result = metav1.Status{Status: metav1.StatusFailure, Message: "no"}
		}
		h.answer.Store(&f)
		defer h.answer.Store(nil)
		_, err := hostsIn(dc, "v2").Create(ctx, hostV2("two", "a", "1"), metav1.CreateOptions{})
		if !apierrors.IsInternalError(err) {
			t.Fatalf("Create v2 = %v, want 500", err)
		}
		h.answer.Store(nil)
		if _, err := hostsIn(dc, "v1").Get(ctx, "two", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Get of the failed create = %v, want NotFound", err)
		}
	})
}

func TestCRDWebhookConversionValidation(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	h := newConversionHook(t, hostPortConversion)
	cases := []struct {
		name   string
		mutate func(*apiextensionsv1.CustomResourceDefinition)
		field  string
	}{
		{"no clientConfig", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion.Webhook.ClientConfig = nil
		}, "spec.conversion.webhookClientConfig"}, // upstream names the internal field
		{"no conversionReviewVersions", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion.Webhook.ConversionReviewVersions = nil
		}, "spec.conversion.conversionReviewVersions"},
		{"unknown conversionReviewVersions only", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion.Webhook.ConversionReviewVersions = []string{"v3"}
		}, "spec.conversion.conversionReviewVersions"},
		{"no webhook", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion.Webhook = nil
		}, "spec.conversion.webhookClientConfig"},
		{"preserveUnknownFields", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.PreserveUnknownFields = true
		}, "spec.conversion.strategy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crd := hostsCRD(h)
			tc.mutate(crd)
			_, err := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("Create = %v, want 422 Invalid", err)
			}
			var fields []string
			for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
				fields = append(fields, c.Field)
			}
			found := false
			for _, f := range fields {
				found = found || strings.HasPrefix(f, tc.field)
			}
			if !found {
				t.Errorf("Create causes name %v, want %s", fields, tc.field)
			}
		})
	}
}
