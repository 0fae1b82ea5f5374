package pods

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

func TestPullAuth(t *testing.T) {
	m := testManager(t, Config{})
	objs := testObjects()
	add := func(name string, typ corev1.SecretType, key, data string) {
		objs.Secrets[types.NamespacedName{Namespace: "ns", Name: name}] = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Type: typ, Data: map[string][]byte{key: []byte(data)}}
	}
	add("json", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey,
		`{"auths":{"https://index.docker.io/v1/":{"username":"hub","password":"hp"},"registry.example:5000":{"auth":"`+
			base64.StdEncoding.EncodeToString([]byte("u:p:with:colons"))+`"}}}`)
	add("cfg", corev1.SecretTypeDockercfg, corev1.DockerConfigKey, `{"http://old.example/v2/":{"username":"o","password":"op"}}`)
	add("broken", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, `{not json`)
	m.SetObjects(objs)
	pod := newPod("p", "")
	pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "json"}, {Name: "absent"}, {Name: "cfg"}, {Name: "broken"}}
	var events []string
	spec, err := m.containerSpec(pod, &pod.Spec.Containers[0], "", func(reason, msg string) { events = append(events, reason+": "+msg) })
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.RegistryAuth{
		{Host: "index.docker.io", Username: "hub", Password: "hp"},
		{Host: "registry.example:5000", Username: "u", Password: "p:with:colons"},
		{Host: "old.example", Username: "o", Password: "op"},
	}
	if d := cmp.Diff(want, spec.PullAuth); d != "" {
		t.Errorf("pull auth (-want +got):\n%s", d)
	}
	wantEvents := []string{"FailedToRetrieveImagePullSecret: Unable to retrieve some image pull secrets (absent, broken); attempting to pull the image may not succeed."}
	if d := cmp.Diff(wantEvents, events); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}
