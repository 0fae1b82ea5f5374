package apiserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// writeCase is one write of each verb and subresource.
type writeCase struct {
	name, method, path, contentType, body string
}

// dryRunFixture creates what writeCases write to: pod default/p
// (unbound), replication controller default/rc and namespace ns1.
func dryRunFixture(t *testing.T, ts *testServer) []writeCase {
	t.Helper()
	ctx := testContext(t)
	pod, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("p", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create pod: %v", err)
	}
	one := int32(1)
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc"}, Spec: corev1.ReplicationControllerSpec{
		Replicas: &one,
		Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "rc"}}, Spec: testPod("", nil).Spec},
	}}
	if _, err := ts.client.CoreV1().ReplicationControllers("default").Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create rc: %v", err)
	}
	if _, err := ts.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create namespace: %v", err)
	}
	labelled := pod.DeepCopy()
	labelled.Labels = map[string]string{"changed": "yes"}
	labelled.ResourceVersion = ""
	withStatus := pod.DeepCopy()
	withStatus.Status.Message = "changed"
	withStatus.ResourceVersion = ""
	const pods = "/api/v1/namespaces/default/pods"
	const merge = "application/merge-patch+json"
	return []writeCase{
		{"create", "POST", pods, "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"new"},"spec":{"containers":[{"name":"c","image":"i"}]}}`},
		{"update", "PUT", pods + "/p", "application/json", mustJSON(t, labelled)},
		{"patch", "PATCH", pods + "/p", merge, `{"metadata":{"labels":{"changed":"yes"}}}`},
		{"delete", "DELETE", pods + "/p", "", ""},
		{"delete options in body", "DELETE", pods + "/p", "application/json", `{"kind":"DeleteOptions","apiVersion":"v1","dryRun":["Bogus"]}`},
		{"deletecollection", "DELETE", pods, "", ""},
		{"status update", "PUT", pods + "/p/status", "application/json", mustJSON(t, withStatus)},
		{"status patch", "PATCH", pods + "/p/status", merge, `{"status":{"message":"changed"}}`},
		{"scale update", "PUT", "/api/v1/namespaces/default/replicationcontrollers/rc/scale", "application/json",
			`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"rc","namespace":"default"},"spec":{"replicas":3}}`},
		{"scale patch", "PATCH", "/api/v1/namespaces/default/replicationcontrollers/rc/scale", merge, `{"spec":{"replicas":3}}`},
		{"binding", "POST", pods + "/p/binding", "application/json",
			`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}`},
		{"eviction", "POST", pods + "/p/eviction", "application/json",
			`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p","namespace":"default"}}`},
		{"finalize", "PUT", "/api/v1/namespaces/ns1/finalize", "application/json",
			`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns1"},"spec":{"finalizers":[]}}`},
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func (ts *testServer) revision(t *testing.T) int64 {
	t.Helper()
	rev, err := ts.store.CurrentRevision(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// A dryRun other than All is refused with 422 on the write's options,
// naming dryRun, by every write, as upstream's handlers refuse it; none
// of them writes. dryRun=All writes nothing either.
func TestDryRunValues(t *testing.T) {
	ts := newTestServer(t)
	for _, req := range dryRunFixture(t, ts) {
		for _, value := range []string{"All", "all", "true", "Bogus"} {
			if req.name == "delete options in body" && value != "All" {
				continue // its body says Bogus whatever the query says
			}
			t.Run(req.name+"/"+value, func(t *testing.T) {
				before := ts.revision(t)
				code, st := rawRequest(t, ts, req.method, req.path+"?dryRun="+url.QueryEscape(value), req.contentType, []byte(req.body))
				switch {
				case value == "All" && req.name == "delete options in body":
					if code != http.StatusUnprocessableEntity || !causeNamed(st, "dryRun") {
						t.Errorf("%s with dryRun Bogus in the body = %d %s, want 422 naming dryRun", req.method, code, st.Message)
					}
				case value == "All":
					if code >= 300 {
						t.Errorf("%s %s?dryRun=All = %d %s, want success", req.method, req.path, code, st.Message)
					}
				case code != http.StatusUnprocessableEntity || st.Reason != metav1.StatusReasonInvalid || !causeNamed(st, "dryRun"):
					t.Errorf("%s %s?dryRun=%s = %d %s %s, want 422 Invalid naming dryRun", req.method, req.path, value, code, st.Reason, st.Message)
				}
				if after := ts.revision(t); after != before {
					t.Errorf("%s %s?dryRun=%s wrote: revision %d → %d", req.method, req.path, value, before, after)
				}
			})
		}
	}
}

func causeNamed(st metav1.Status, field string) bool {
	if st.Details == nil {
		return false
	}
	for _, c := range st.Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

// Unknown fieldValidation and resourceVersionMatch values and a limit
// that is not a number are refused as upstream refuses them, naming the
// parameter; a negative limit lists everything, as upstream.
func TestQueryParameters(t *testing.T) {
	ts := newTestServer(t)
	for _, name := range []string{"a", "b"} {
		if _, err := ts.client.CoreV1().Pods("default").Create(testContext(t), testPod(name, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const pods = "/api/v1/namespaces/default/pods"
	newPod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"new"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	cases := []struct {
		name, method, query, body string
		code                      int
		field                     string // a cause must name it; else the message must
	}{
		{"fieldValidation on create", "POST", "fieldValidation=Bogus", newPod, 422, "fieldValidation"},
		{"fieldValidation lowercase", "POST", "fieldValidation=strict", newPod, 422, "fieldValidation"},
		{"fieldValidation on patch", "PATCH", "fieldValidation=Bogus", `{"metadata":{"labels":{"a":"b"}}}`, 422, "fieldValidation"},
		{"resourceVersionMatch unknown", "GET", "resourceVersion=1&resourceVersionMatch=Bogus", "", 422, "resourceVersionMatch"},
		{"resourceVersionMatch without resourceVersion", "GET", "resourceVersionMatch=Exact", "", 422, "resourceVersionMatch"},
		{"limit not a number", "GET", "limit=abc", "", 400, "limit"},
		{"limit negative", "GET", "limit=-1", "", 200, ""},
		{"fieldValidation Strict", "POST", "fieldValidation=Strict", newPod, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, ct := pods, "application/json"
			if tc.method == "PATCH" {
				path, ct = pods+"/a", "application/merge-patch+json"
			}
			before := ts.revision(t)
			code, st := rawRequest(t, ts, tc.method, path+"?"+tc.query, ct, []byte(tc.body))
			if code != tc.code {
				t.Fatalf("%s ?%s = %d %s, want %d", tc.method, tc.query, code, st.Message, tc.code)
			}
			if tc.field != "" && !causeNamed(st, tc.field) && !strings.Contains(st.Message, tc.field) {
				t.Errorf("%s ?%s = %s (%+v), want it to name %s", tc.method, tc.query, st.Message, st.Details, tc.field)
			}
			if code >= 400 && ts.revision(t) != before {
				t.Errorf("%s ?%s was refused but wrote", tc.method, tc.query)
			}
		})
	}
	list, err := ts.client.CoreV1().Pods("default").List(testContext(t), metav1.ListOptions{Limit: -1})
	if err != nil || len(list.Items) != 3 || list.Continue != "" {
		t.Errorf("List(limit -1) = %d pods, continue %q, %v; want all 3", len(list.Items), list.Continue, err)
	}
}
