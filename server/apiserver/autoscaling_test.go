package apiserver

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// TestAutoscalingDiscovery reads the autoscaling group as the Discovery
// and AggregatedDiscovery conformance specs do: both versions listed, v2
// preferred, each serving horizontalpodautoscalers with its status.
func TestAutoscalingDiscovery(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	rc := ts.client.Discovery().RESTClient()

	var group metav1.APIGroup
	if err := rc.Get().AbsPath("/apis/autoscaling").Do(ctx).Into(&group); err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, v := range group.Versions {
		versions = append(versions, v.GroupVersion)
	}
	if diff := cmp.Diff([]string{"autoscaling/v2", "autoscaling/v1"}, versions); diff != "" {
		t.Errorf("/apis/autoscaling versions (-want +got):\n%s", diff)
	}
	if group.PreferredVersion.GroupVersion != "autoscaling/v2" {
		t.Errorf("/apis/autoscaling preferred %q, want autoscaling/v2", group.PreferredVersion.GroupVersion)
	}

	var groups metav1.APIGroupList
	if err := rc.Get().AbsPath("/apis").Do(ctx).Into(&groups); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "autoscaling" })
	if i < 0 || len(groups.Groups[i].Versions) != 2 || groups.Groups[i].PreferredVersion.Version != "v2" {
		t.Errorf("/apis lists autoscaling as %+v, want v2 (preferred) and v1", groups.Groups)
	}

	for _, gv := range []string{"autoscaling/v1", "autoscaling/v2"} {
		var list metav1.APIResourceList
		if err := rc.Get().AbsPath("/apis/" + gv).Do(ctx).Into(&list); err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		var names []string
		for _, r := range list.APIResources {
			names = append(names, r.Name)
		}
		if diff := cmp.Diff([]string{"horizontalpodautoscalers", "horizontalpodautoscalers/status"}, names); diff != "" {
			t.Errorf("/apis/%s resources (-want +got):\n%s", gv, diff)
		}
	}

	data, err := rc.Get().AbsPath("/apis").SetHeader("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList").Do(ctx).Raw()
	if err != nil {
		t.Fatal(err)
	}
	var agg apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(data, &agg); err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, g := range agg.Items {
		for _, v := range g.Versions {
			for _, r := range v.Resources {
				if r.Resource == "horizontalpodautoscalers" {
					found = append(found, g.Name+"/"+v.Version+" "+r.ResponseKind.Version)
				}
			}
		}
	}
	if diff := cmp.Diff([]string{"autoscaling/v2 v2", "autoscaling/v1 v1"}, found); diff != "" {
		t.Errorf("aggregated discovery of horizontalpodautoscalers (-want +got):\n%s", diff)
	}

	var openapi struct{ Paths map[string]any }
	if raw, err := rc.Get().AbsPath("/openapi/v3").Do(ctx).Raw(); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(raw, &openapi); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"apis/autoscaling/v1", "apis/autoscaling/v2"} {
		if _, ok := openapi.Paths[p]; !ok {
			t.Errorf("/openapi/v3 has no %s", p)
		}
	}

	for _, v := range []string{"v1", "v2"} {
		var doc struct {
			Components struct{ Schemas map[string]any }
		}
		if raw, err := rc.Get().AbsPath("/openapi/v3/apis/autoscaling/" + v).Do(ctx).Raw(); err != nil {
			t.Fatal(err)
		} else if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if name := "io.k8s.api.autoscaling." + v + ".HorizontalPodAutoscaler"; doc.Components.Schemas[name] == nil {
			t.Errorf("/openapi/v3/apis/autoscaling/%s has no schema %s", v, name)
		}
	}

	ad, ok := ts.client.Discovery().(discovery.AggregatedDiscoveryInterface)
	if !ok {
		t.Fatal("the client does not support aggregated discovery")
	}
	_, byGV, _, err := ad.GroupsAndMaybeResources()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		gv := schema.GroupVersion{Group: "autoscaling", Version: v}
		if l := byGV[gv]; l == nil || !slices.ContainsFunc(l.APIResources, func(r metav1.APIResource) bool { return r.Name == "horizontalpodautoscalers" }) {
			t.Errorf("GroupsAndMaybeResources has no horizontalpodautoscalers in %s", gv)
		}
	}
}

func newHPAV2(name string) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MinReplicas:    ptr.To(int32(2)),
			MaxReplicas:    5,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(60))},
				}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "requests"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse("10"))},
				}},
			},
		},
	}
}

// TestHPAVersions writes HorizontalPodAutoscalers through each version
// and reads them through the other, in JSON and protobuf.
func TestHPAVersions(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	for _, c := range []struct {
		name   string
		client kubernetes.Interface
	}{{"protobuf", ts.client}, {"json", ts.jsonClient(t)}} {
		t.Run(c.name, func(t *testing.T) {
			v1 := c.client.AutoscalingV1().HorizontalPodAutoscalers("default")
			v2 := c.client.AutoscalingV2().HorizontalPodAutoscalers("default")

			in := newHPAV2("from-v2-" + c.name)
			created, err := v2.Create(ctx, in, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create in v2: %v", err)
			}
			old, err := v1.Get(ctx, in.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get in v1: %v", err)
			}
			if p := old.Spec.TargetCPUUtilizationPercentage; p == nil || *p != 60 || *old.Spec.MinReplicas != 2 ||
				old.Spec.MaxReplicas != 5 || old.Spec.ScaleTargetRef.Name != "web" || old.ResourceVersion != created.ResourceVersion {
				t.Errorf("v1 view of a v2 autoscaler = %+v", old.Spec)
			}
			if _, ok := old.Annotations["autoscaling.alpha.kubernetes.io/metrics"]; !ok {
				t.Errorf("v1 view keeps no annotation for the pods metric: %v", old.Annotations)
			}

			// An update through v1 keeps what only v2 can say.
			old.Spec.MaxReplicas = 7
			if _, err := v1.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("update in v1: %v", err)
			}
			back, err := v2.Get(ctx, in.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := in.Spec.DeepCopy()
			want.MaxReplicas = 7
			want.Metrics = []autoscalingv2.MetricSpec{in.Spec.Metrics[1], in.Spec.Metrics[0]} // v1 puts the CPU target last
			if diff := cmp.Diff(*want, back.Spec); diff != "" {
				t.Errorf("v2 after a v1 update (-want +got):\n%s", diff)
			}
			if len(back.Annotations) != 0 {
				t.Errorf("v2 object has annotations %v, want none", back.Annotations)
			}
			// Field management tracks the v1 write beside the v2 one,
			// converting between the versions.
			var managed []string
			for _, e := range back.ManagedFields {
				managed = append(managed, e.APIVersion+" "+string(e.Operation))
			}
			slices.Sort(managed)
			if diff := cmp.Diff([]string{"autoscaling/v1 Update", "autoscaling/v2 Update"}, managed); diff != "" {
				t.Errorf("managedFields (-want +got):\n%s", diff)
			}
			if back.Generation != 2 {
				t.Errorf("generation after a spec change = %d, want 2", back.Generation)
			}

			// Created in v1 with no target: CPU at 80% in v2.
			plain := &autoscalingv1.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Name: "from-v1-" + c.name},
				Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "ReplicationController", Name: "rc"},
					MaxReplicas:    3,
				},
			}
			if _, err := v1.Create(ctx, plain, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create in v1: %v", err)
			}
			got, err := v2.Get(ctx, plain.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Spec.Metrics) != 1 || got.Spec.Metrics[0].Resource == nil || *got.Spec.Metrics[0].Resource.Target.AverageUtilization != 80 ||
				*got.Spec.MinReplicas != 1 {
				t.Errorf("v2 view of a v1 autoscaler without target = %+v", got.Spec)
			}

			// Status written in v2 reads in v1.
			got.Status = autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, DesiredReplicas: 3,
				CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
					Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To(int32(42)), AverageValue: ptr.To(resource.MustParse("100m"))},
				}}}}
			if _, err := v2.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("update status in v2: %v", err)
			}
			st, err := v1.Get(ctx, plain.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p := st.Status.CurrentCPUUtilizationPercentage; p == nil || *p != 42 || st.Status.DesiredReplicas != 3 {
				t.Errorf("v1 status = %+v, want 42%% CPU and 3 desired", st.Status)
			}
		})
	}
}

// TestHPAInvalid checks that bad autoscalers are refused in both versions
// with a 422 naming the field.
func TestHPAInvalid(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	bad := newHPAV2("bad")
	bad.Spec.MinReplicas = ptr.To(int32(0))
	_, err := ts.client.AutoscalingV2().HorizontalPodAutoscalers("default").Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasFieldCause(err, "spec.minReplicas") {
		t.Errorf("create with minReplicas 0 in v2: %v, want Invalid on spec.minReplicas", err)
	}
	badV1 := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec:       autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Name: "web"}, MaxReplicas: 1},
	}
	_, err = ts.client.AutoscalingV1().HorizontalPodAutoscalers("default").Create(ctx, badV1, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasFieldCause(err, "spec.scaleTargetRef.kind") {
		t.Errorf("create without a target kind in v1: %v, want Invalid on spec.scaleTargetRef.kind", err)
	}
}
