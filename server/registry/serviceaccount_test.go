package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validServiceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		ObjectMeta:       metav1.ObjectMeta{Name: "builder", Namespace: "default"},
		Secrets:          []corev1.ObjectReference{{Name: "builder-token"}},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
	}
}

func TestValidateServiceAccount(t *testing.T) {
	runValidation(t, serviceAccountResource, validServiceAccount, []validationCase[*corev1.ServiceAccount]{
		{name: "valid"},
		{"name a subdomain", func(sa *corev1.ServiceAccount) { sa.Name = "Builder" }, []string{errKey(invalid, "metadata.name")}},
		{"no namespace", func(sa *corev1.ServiceAccount) { sa.Namespace = "" }, []string{errKey(required, "metadata.namespace")}},
	})
	runUpdate(t, serviceAccountResource, false, func() *corev1.ServiceAccount {
		return stored(serviceAccountResource, validServiceAccount())
	}, []validationCase[*corev1.ServiceAccount]{
		{"secrets", func(sa *corev1.ServiceAccount) { sa.Secrets = nil }, nil},
		{"automount", func(sa *corev1.ServiceAccount) { sa.AutomountServiceAccountToken = ptrTo(false) }, nil},
		{"bad label", func(sa *corev1.ServiceAccount) { sa.Labels = map[string]string{"a b": "c"} },
			[]string{errKey(invalid, "metadata.labels")}},
	})
}

func TestServiceAccountRow(t *testing.T) {
	sa := stored(serviceAccountResource, validServiceAccount())
	if diff := cmp.Diff([]interface{}{"builder", int64(1), "60m"}, serviceAccountRow(sa, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
