//go:build integration

package test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

const crontabCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
              image: {type: string}
              replicas: {type: integer, default: 1, maximum: 10}
`

const crontab = `apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: nightly}
spec: {cronSpec: "0 3 * * *", image: busybox}
`

// TestIntegrationCustomResources applies a CustomResourceDefinition and
// an object of its kind with the bundled kubectl, lists it with its
// printer columns, watches a change through client-go's dynamic client,
// and deletes the definition, which takes its objects with it.
func TestIntegrationCustomResources(t *testing.T) {
	s := startServer(t)
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		return s.mustMinik(stdin, append([]string{"kubectl"}, args...)...)
	}
	kubectl(crontabCRD, "apply", "-f", "-")
	kubectl("", "wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=30s")
	if out := kubectl(crontab, "apply", "-f", "-"); !strings.Contains(out, "crontab.stable.example.com/nightly created") {
		t.Fatalf("apply CronTab: %s", out)
	}
	out := kubectl("", "get", "ct")
	if !strings.Contains(out, "SPEC") || !strings.Contains(out, "REPLICAS") || !strings.Contains(out, "0 3 * * *") {
		t.Errorf("get ct =\n%s\nwant the printer columns SPEC and REPLICAS with the object's values", out)
	}
	if out, code := s.minik(strings.Replace(crontab, "image: busybox", "image: busybox, replicas: 11", 1), "kubectl", "apply", "-f", "-"); code == 0 || !strings.Contains(out, "spec.replicas") {
		t.Errorf("apply over the schema's maximum: exit %d\n%s\nwant a refusal naming spec.replicas", code, out)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	crontabs := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}).Namespace("default")
	cur, err := crontabs.Get(ctx, "nightly", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if r, _, _ := unstructured.NestedInt64(cur.Object, "spec", "replicas"); r != 1 {
		t.Errorf("spec.replicas = %d, want the default 1", r)
	}
	w, err := crontabs.Watch(ctx, metav1.ListOptions{ResourceVersion: cur.GetResourceVersion()})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	kubectl("", "patch", "ct", "nightly", "--type=merge", "-p", `{"spec":{"replicas":3}}`)
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Modified {
			t.Errorf("watch event = %s, want MODIFIED", ev.Type)
		}
	case <-ctx.Done():
		t.Fatal("no watch event for the patch")
	}

	kubectl("", "delete", "crd", "crontabs.stable.example.com")
	if out, code := s.minik("", "kubectl", "get", "crontabs.stable.example.com"); code == 0 {
		t.Errorf("get crontabs after the CRD was deleted succeeded:\n%s", out)
	}
	if out := kubectl("", "get", "--raw", "/apis"); strings.Contains(out, "stable.example.com") {
		t.Errorf("/apis still lists stable.example.com after the CRD was deleted")
	}
}
