package nodes_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/envelope"
)

var refKinds = []api.ObjectKind{api.ObjectKind_OBJECT_KIND_CONFIGMAP, api.ObjectKind_OBJECT_KIND_SECRET}

// putObject creates or replaces a ConfigMap or Secret in namespace default
// in the store, as the API would store it.
func (e *env) putObject(obj runtime.Object) {
	e.t.Helper()
	var key, kind string
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		key, kind = "/registry/configmaps/default/"+o.Name, "ConfigMap"
	case *corev1.Secret:
		key, kind = "/registry/secrets/default/"+o.Name, "Secret"
	}
	value, err := envelope.Encode(obj.(envelope.Message), "v1", kind)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.Update(ctxT(e.t), key, value, 0); err != nil {
		if _, err := e.st.Create(ctxT(e.t), key, value); err != nil {
			e.t.Fatal(err)
		}
	}
}

func configMap(name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"k": value}}
}

func secret(name, value string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string][]byte{"k": []byte(value)}}
}

// createRefPod creates a pod bound to node that references the ConfigMaps
// cms (volumes) and the Secrets secrets (env).
func (e *env) createRefPod(name, node string, cms, secrets []string) {
	e.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for _, cm := range cms {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: cm, VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}})
	}
	for _, s := range secrets {
		p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "S", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: s}, Key: "k"}}})
	}
	if _, err := e.admin.Pods("default").Create(ctxT(e.t), p, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("creating pod %q: %v", name, err)
	}
}

// follow receives the session's messages up to the store's current
// revision and returns their changes of the kinds given, and the decoded
// ConfigMap data of each PUT ("name=value").
func (e *env) follow(s api.Node_SessionClient, from int64, kinds ...api.ObjectKind) (changes, data []string) {
	e.t.Helper()
	end, err := e.st.CurrentRevision(ctxT(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	for last := from; last < end; {
		m := recvT(e.t, s)
		if m.Type != api.SessionMessage_INCREMENTAL || m.PrevRevision != last {
			e.t.Fatalf("message %v prev %d after %d, want a chained INCREMENTAL", m.Type, m.PrevRevision, last)
		}
		last = m.Revision
		changes = append(changes, summary(m, kinds...)...)
		data = append(data, refData(e.t, m)...)
	}
	return changes, data
}

// refData decodes the ConfigMaps and Secrets put by m as "name=value".
func refData(t *testing.T, m *api.SessionMessage) []string {
	var out []string
	for _, c := range m.Changes {
		if c.Action != api.Change_PUT {
			continue
		}
		switch c.Kind {
		case api.ObjectKind_OBJECT_KIND_CONFIGMAP:
			var cm corev1.ConfigMap
			if err := json.Unmarshal(c.Object, &cm); err != nil || cm.ResourceVersion == "" {
				t.Fatalf("ConfigMap %s: %v (resourceVersion %q)", c.Name, err, cm.ResourceVersion)
			}
			out = append(out, cm.Name+"="+cm.Data["k"])
		case api.ObjectKind_OBJECT_KIND_SECRET:
			var s corev1.Secret
			if err := json.Unmarshal(c.Object, &s); err != nil {
				t.Fatalf("Secret %s: %v", c.Name, err)
			}
			out = append(out, s.Name+"="+string(s.Data["k"]))
		}
	}
	return out
}

// TestSessionReferencedObjects checks that a node gets the ConfigMaps and
// Secrets its pods reference, their changes, their removal when no pod
// references them any more, and nothing of any other.
func TestSessionReferencedObjects(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	e.putObject(configMap("used-cm", "1"))
	e.putObject(configMap("other-cm", "x"))
	e.putObject(secret("used-secret", "s1"))
	e.putObject(secret("other-secret", "x"))
	e.putObject(secret("theirs-secret", "x"))
	e.putObject(configMap("late-cm", "l1"))
	e.createRefPod("mine", "n1", []string{"used-cm", "missing-cm"}, []string{"used-secret"})
	e.createRefPod("theirs", "n2", nil, []string{"theirs-secret"})

	s := session(t, c, 0)
	first := recvT(t, s)
	want := []string{"PUT OBJECT_KIND_CONFIGMAP default/used-cm", "PUT OBJECT_KIND_SECRET default/used-secret"}
	if d := cmp.Diff(want, summary(first, refKinds...)); d != "" {
		t.Errorf("complete set (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"used-cm=1", "used-secret=s1"}, refData(t, first)); d != "" {
		t.Errorf("complete set data (-want +got):\n%s", d)
	}

	e.putObject(configMap("used-cm", "2"))
	e.putObject(configMap("other-cm", "y"))
	e.putObject(secret("theirs-secret", "y"))
	e.putObject(secret("other-secret", "y"))
	e.putObject(configMap("missing-cm", "m1"))
	e.createRefPod("second", "n1", []string{"late-cm", "used-cm"}, nil)
	if err := e.admin.Pods("default").Delete(ctxT(t), "mine", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	e.putObject(secret("used-secret", "s2"))
	e.putObject(configMap("used-cm", "3"))
	kinds := append([]api.ObjectKind{api.ObjectKind_OBJECT_KIND_POD}, refKinds...)
	changes, data := e.follow(s, first.Revision, kinds...)
	wantChanges := []string{
		"PUT OBJECT_KIND_CONFIGMAP default/used-cm",
		"PUT OBJECT_KIND_CONFIGMAP default/missing-cm",
		"PUT OBJECT_KIND_POD default/second",
		"PUT OBJECT_KIND_CONFIGMAP default/late-cm",
		"DELETE OBJECT_KIND_POD default/mine",
		"DELETE OBJECT_KIND_CONFIGMAP default/missing-cm",
		"DELETE OBJECT_KIND_SECRET default/used-secret",
		"PUT OBJECT_KIND_CONFIGMAP default/used-cm",
	}
	if d := cmp.Diff(wantChanges, changes); d != "" {
		t.Errorf("incremental changes (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"used-cm=2", "missing-cm=m1", "late-cm=l1", "used-cm=3"}, data); d != "" {
		t.Errorf("incremental data (-want +got):\n%s", d)
	}

	// A session resuming from the complete set's revision rebuilds what the
	// node's pods referenced then, and sends the same changes.
	resumed, _ := e.follow(session(t, c, first.Revision), first.Revision, refKinds...)
	var wantRefs []string
	for _, ch := range wantChanges {
		if ch != "PUT OBJECT_KIND_POD default/second" && ch != "DELETE OBJECT_KIND_POD default/mine" {
			wantRefs = append(wantRefs, ch)
		}
	}
	if d := cmp.Diff(wantRefs, resumed); d != "" {
		t.Errorf("resumed session (-want +got):\n%s", d)
	}

	// Another node sees only its own pod's Secret.
	c2, _ := e.register("n2")
	other := recvT(t, session(t, c2, 0))
	if d := cmp.Diff([]string{"PUT OBJECT_KIND_SECRET default/theirs-secret"}, summary(other, refKinds...)); d != "" {
		t.Errorf("n2's complete set (-want +got):\n%s", d)
	}
}
