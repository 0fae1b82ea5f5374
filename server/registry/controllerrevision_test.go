package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func validRevision() *appsv1.ControllerRevision {
	return stored(controllerRevisionResource, &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f", Namespace: "default"},
		Data:       runtime.RawExtension{Raw: []byte(`{"spec":{"template":{}}}`)},
		Revision:   1,
	})
}

func TestControllerRevisionValidation(t *testing.T) {
	runValidation(t, controllerRevisionResource, validRevision, []validationCase[*appsv1.ControllerRevision]{
		{name: "valid"},
		{"data required", func(cr *appsv1.ControllerRevision) { cr.Data = runtime.RawExtension{} },
			[]string{errKey(required, "data")}},
		{"revision not negative", func(cr *appsv1.ControllerRevision) { cr.Revision = -1 },
			[]string{errKey(invalid, "revision")}},
		{"namespace required", func(cr *appsv1.ControllerRevision) { cr.Namespace = "" },
			[]string{errKey(required, "metadata.namespace")}},
	})
}

func TestControllerRevisionUpdate(t *testing.T) {
	runUpdate(t, controllerRevisionResource, false, validRevision, []validationCase[*appsv1.ControllerRevision]{
		{"revision may change", func(cr *appsv1.ControllerRevision) { cr.Revision = 5 }, nil},
		{"data immutable", func(cr *appsv1.ControllerRevision) { cr.Data.Raw = []byte(`{"spec":{}}`) },
			[]string{errKey(invalid, "data")}},
	})
	runUpdate(t, controllerRevisionResource, true, validRevision, []validationCase[*appsv1.ControllerRevision]{
		{"status update keeps data", func(cr *appsv1.ControllerRevision) { cr.Data.Raw = []byte(`{}`); cr.Revision = 9 }, nil},
	})
}

func TestControllerRevisionRow(t *testing.T) {
	cr := validRevision()
	if diff := cmp.Diff([]interface{}{"web-7d9f", "<none>", int64(1), "60m"}, controllerRevisionRow(cr, testNow)); diff != "" {
		t.Errorf("row without owner (-want +got):\n%s", diff)
	}
	yes := true
	cr.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "web", UID: "u", Controller: &yes}}
	cr.CreationTimestamp = metav1.NewTime(testNow.Add(-90 * time.Second))
	if diff := cmp.Diff([]interface{}{"web-7d9f", "DaemonSet.apps/web", int64(1), "90s"}, controllerRevisionRow(cr, testNow)); diff != "" {
		t.Errorf("row with owner (-want +got):\n%s", diff)
	}
}
