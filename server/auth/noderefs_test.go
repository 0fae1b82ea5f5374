package auth_test

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/auth"
)

func ref(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }

// refPods are the pods of namespace default, by node, each using objects
// in one of the ways a pod can.
var refPods = map[string][]*corev1.Pod{
	"n1": {
		{ObjectMeta: metav1.ObjectMeta{Name: "volumes"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
			{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("vol-cm")}}},
			{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("proj-secret")}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("proj-cm")}},
				{DownwardAPI: &corev1.DownwardAPIProjection{}},
			}}}},
			{VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "csi-secret"}}}},
			{VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "env"}, Spec: corev1.PodSpec{
			ImagePullSecrets: []corev1.LocalObjectReference{ref("pull")},
			InitContainers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("init-envfrom-secret")}},
			}}},
			Containers: []corev1.Container{{
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("envfrom-cm")}}},
				Env: []corev1.EnvVar{
					{Name: "A", Value: "plain"},
					{Name: "B", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "C", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("env-secret")}}},
				},
			}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Env: []corev1.EnvVar{{Name: "D", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("debug-cm")}}}},
			}}},
		}},
	},
	"n2": {{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{ref("their-pull")}}}},
}

func listRefPods(_ context.Context, node, ns string) ([]*corev1.Pod, error) {
	if ns != "default" {
		return nil, nil
	}
	return refPods[node], nil
}

func TestAuthorizeNodeReferences(t *testing.T) {
	z := &auth.Authorizer{NodePods: auth.NodePodsFunc(listRefPods)}
	tests := []struct {
		name string
		attr auth.Attributes
		want bool
	}{
		{"secret volume", res("get", "secrets", "", "default", "vol-secret"), true},
		{"configmap volume", res("get", "configmaps", "", "default", "vol-cm"), true},
		{"projected secret", res("get", "secrets", "", "default", "proj-secret"), true},
		{"projected configmap", res("get", "configmaps", "", "default", "proj-cm"), true},
		{"csi credentials", res("get", "secrets", "", "default", "csi-secret"), true},
		{"image pull secret", res("get", "secrets", "", "default", "pull"), true},
		{"init container envFrom", res("get", "secrets", "", "default", "init-envfrom-secret"), true},
		{"envFrom configmap", res("get", "configmaps", "", "default", "envfrom-cm"), true},
		{"env secret", res("get", "secrets", "", "default", "env-secret"), true},
		{"ephemeral container env", res("get", "configmaps", "", "default", "debug-cm"), true},

		{"configmap name as a secret", res("get", "secrets", "", "default", "vol-cm"), false},
		{"secret name as a configmap", res("get", "configmaps", "", "default", "pull"), false},
		{"another node's pod", res("get", "secrets", "", "default", "their-pull"), false},
		{"another namespace", res("get", "secrets", "", "other", "vol-secret"), false},
		{"unused", res("get", "secrets", "", "default", "nothing"), false},
		{"list", res("list", "secrets", "", "default", ""), false},
		{"watch by name", res("watch", "configmaps", "", "default", "vol-cm"), true},
		{"list by name", res("list", "secrets", "", "default", "pull"), true},
		{"watch an unused one by name", res("watch", "secrets", "", "default", "nothing"), false},
		{"update", res("update", "secrets", "", "default", "vol-secret"), false},
		{"delete", res("delete", "configmaps", "", "default", "vol-cm"), false},
		{"no namespace", res("get", "secrets", "", "", "vol-secret"), false},
		{"subresource", res("get", "secrets", "status", "default", "vol-secret"), false},
		{"other group", auth.Attributes{Verb: "get", APIGroup: "example.com", Resource: "secrets", Namespace: "default", Name: "vol-secret"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := z.Authorize(context.Background(), node1, tc.attr)
			if got != tc.want {
				t.Errorf("Authorize(node n1, %+v) = %v (%s), want %v", tc.attr, got, reason, tc.want)
			}
		})
	}
}

func TestAuthorizeNodeReferencesFailClosed(t *testing.T) {
	get := res("get", "secrets", "", "default", "vol-secret")
	if ok, _ := (&auth.Authorizer{}).Authorize(context.Background(), node1, get); ok {
		t.Error("without a NodePodLister a node got a secret, want 403")
	}
	broken := &auth.Authorizer{NodePods: auth.NodePodsFunc(func(context.Context, string, string) ([]*corev1.Pod, error) {
		return nil, errors.New("store unavailable")
	})}
	if ok, _ := broken.Authorize(context.Background(), node1, get); ok {
		t.Error("with pods unknown a node got a secret, want 403")
	}
	z := &auth.Authorizer{NodePods: auth.NodePodsFunc(listRefPods)}
	if ok, _ := z.Authorize(context.Background(), plain, get); ok {
		t.Error("a plain user got a secret through the node rules")
	}
	if ok, _ := z.Authorize(context.Background(), fakeNode, get); ok {
		t.Error("a user named like a node, outside the nodes group, got a secret")
	}
}
