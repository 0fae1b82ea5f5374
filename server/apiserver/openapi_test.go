package apiserver

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/openapi"
	kubeproto "k8s.io/kube-openapi/pkg/util/proto"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
)

// TestExplainReadsOpenAPIV3 runs kubectl explain's own code against the
// server's OpenAPI v3 documents, for built-in kinds of two groups.
func TestExplainReadsOpenAPIV3(t *testing.T) {
	ts := newTestServer(t)
	client := openapi.NewClient(ts.jsonClient(t).Discovery().RESTClient())
	cases := []struct {
		gvr  schema.GroupVersionResource
		path []string
		want []string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, []string{"spec", "containers"},
			[]string{"KIND:       Pod", "FIELD: containers <[]Container>", "List of containers belonging to the pod.", "image\t<string>"}},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, []string{"spec", "strategy"},
			[]string{"KIND:       Deployment", "GROUP:      apps", "rollingUpdate\t<RollingUpdateDeployment>"}},
	}
	for _, tc := range cases {
		t.Run(tc.gvr.Resource, func(t *testing.T) {
			var out bytes.Buffer
			if err := explainv2.PrintModelDescription(tc.path, &out, client, tc.gvr, false, 0, "plaintext"); err != nil {
				t.Fatalf("explain %s.%s: %v", tc.gvr.Resource, strings.Join(tc.path, "."), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("explain %s.%s lacks %q:\n%s", tc.gvr.Resource, strings.Join(tc.path, "."), w, out.String())
				}
			}
		})
	}
}

// TestOpenAPIV2PatchStrategies reads /openapi/v2 as kubectl does (client-go
// asks for protobuf) and finds what client-side apply computes strategic
// merge patches from: containers merge by name.
func TestOpenAPIV2PatchStrategies(t *testing.T) {
	ts := newTestServer(t)
	doc, err := ts.client.Discovery().OpenAPISchema()
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	models, err := kubeproto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("NewOpenAPIData: %v", err)
	}
	for _, name := range []string{"io.k8s.api.core.v1.Pod", "io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.ConfigMapList"} {
		if !slices.Contains(models.ListModels(), name) {
			t.Errorf("/openapi/v2 lacks the definition of %s", name)
		}
	}
	pod := models.LookupModel("io.k8s.api.core.v1.Pod")
	if pod == nil {
		t.Fatal("no Pod model")
	}
	meta := strategicpatch.NewPatchMetaFromOpenAPI(pod)
	spec, _, err := meta.LookupPatchMetadataForStruct("spec")
	if err != nil {
		t.Fatalf("spec patch metadata: %v", err)
	}
	_, containers, err := spec.LookupPatchMetadataForSlice("containers")
	if err != nil {
		t.Fatalf("containers patch metadata: %v", err)
	}
	if !slices.Contains(containers.GetPatchStrategies(), "merge") || containers.GetPatchMergeKey() != "name" {
		t.Errorf("containers patch strategies %v, merge key %q; want merge by name", containers.GetPatchStrategies(), containers.GetPatchMergeKey())
	}
}
