package apiserver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rlist(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

// podWith is a pod whose one container requests and limits as given
// (nil = unset).
func podWith(name string, requests, limits corev1.ResourceList) *corev1.Pod {
	p := testPod(name, nil)
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: requests, Limits: limits}
	return p
}

func TestLimitRangeAdmission(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	makeNamespace(t, ts, "lr")
	lr := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "limits"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:                 corev1.LimitTypeContainer,
			Min:                  rlist("cpu", "100m", "memory", "64Mi"),
			Max:                  rlist("cpu", "2", "memory", "1Gi"),
			Default:              rlist("cpu", "500m", "memory", "256Mi"),
			DefaultRequest:       rlist("cpu", "200m", "memory", "128Mi"),
			MaxLimitRequestRatio: rlist("memory", "4"),
		}, {
			Type: corev1.LimitTypePod,
			Max:  rlist("cpu", "3"),
		}}},
	}
	if _, err := ts.client.CoreV1().LimitRanges("lr").Create(ctx, lr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create LimitRange: %v", err)
	}
	pods := ts.client.CoreV1().Pods("lr")
	got, err := pods.Create(ctx, podWith("plain", nil, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create pod without resources: %v", err)
	}
	want := corev1.ResourceRequirements{Requests: rlist("cpu", "200m", "memory", "128Mi"), Limits: rlist("cpu", "500m", "memory", "256Mi")}
	if diff := cmp.Diff(want, got.Spec.Containers[0].Resources); diff != "" {
		t.Errorf("defaulted resources (-want +got):\n%s", diff)
	}
	if a := got.Annotations["kubernetes.io/limit-ranger"]; a != "LimitRanger plugin set: cpu, memory request for container main; cpu, memory limit for container main" {
		t.Errorf("limit-ranger annotation = %q", a)
	}
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		wantMsg string
	}{
		{"over max", podWith("big", nil, rlist("cpu", "2500m")),
			`pods "big" is forbidden: maximum cpu usage per Container is 2, but limit is 2500m`},
		{"under min", podWith("small", rlist("cpu", "50m"), nil),
			`pods "small" is forbidden: minimum cpu usage per Container is 100m, but request is 50m`},
		{"ratio", podWith("ratio", rlist("memory", "64Mi"), rlist("memory", "512Mi")),
			`pods "ratio" is forbidden: memory max limit to request ratio per Container is 4, but provided ratio is 8.000000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pods.Create(ctx, tc.pod, metav1.CreateOptions{})
			if !apierrors.IsForbidden(err) || err.Error() != tc.wantMsg {
				t.Errorf("Create = %v, want 403 %q", err, tc.wantMsg)
			}
			if _, err := pods.Get(ctx, tc.pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("refused pod stored: %v", err)
			}
		})
	}
	two := podWith("pair", nil, rlist("cpu", "2"))
	two.Spec.Containers = append(two.Spec.Containers, two.Spec.Containers[0])
	two.Spec.Containers[1].Name = "d"
	if _, err := pods.Create(ctx, two, metav1.CreateOptions{}); !apierrors.IsForbidden(err) ||
		err.Error() != `pods "pair" is forbidden: maximum cpu usage per Pod is 3, but limit is 4` {
		t.Errorf("Create of a pod over the Pod max = %v", err)
	}
}

func TestLimitRangeRefusesBadInput(t *testing.T) {
	ts := newTestServer(t)
	lr := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "limits"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, Min: rlist("cpu", "2"), Max: rlist("cpu", "1"),
		}}},
	}
	_, err := ts.client.CoreV1().LimitRanges("default").Create(testContext(t), lr, metav1.CreateOptions{})
	st, ok := err.(apierrors.APIStatus)
	if !apierrors.IsInvalid(err) || !ok || !causeNamed(st.Status(), "spec.limits[0].min[cpu]") {
		t.Errorf("Create with min over max = %v, want 422 naming spec.limits[0].min[cpu]", err)
	}
}
