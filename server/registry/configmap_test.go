package registry

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const tooLong = field.ErrorTypeTooLong

func validConfigMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"},
		Data:       map[string]string{"app.conf": "port=80", ".hidden": "x", "KEY_1": "y"},
		BinaryData: map[string][]byte{"logo.png": {0x89, 0x50}},
	}
}

func TestValidateConfigMap(t *testing.T) {
	runValidation(t, configMapResource, validConfigMap, []validationCase[*corev1.ConfigMap]{
		{name: "valid"},
		{"empty", func(cm *corev1.ConfigMap) { cm.Data, cm.BinaryData = nil, nil }, nil},
		{"key with a slash", func(cm *corev1.ConfigMap) { cm.Data["a/b"] = "x" }, []string{errKey(invalid, "data[a/b]")}},
		{"key ..", func(cm *corev1.ConfigMap) { cm.Data[".."] = "x" }, []string{errKey(invalid, "data[..]")}},
		{"key too long", func(cm *corev1.ConfigMap) { cm.Data[strings.Repeat("k", 254)] = "x" },
			[]string{errKey(invalid, "data["+strings.Repeat("k", 254)+"]")}},
		{"binary key", func(cm *corev1.ConfigMap) { cm.BinaryData["a b"] = nil }, []string{errKey(invalid, "binaryData[a b]")}},
		{"key in both", func(cm *corev1.ConfigMap) { cm.Data["logo.png"] = "x" }, []string{errKey(invalid, "data[logo.png]")}},
		{"1 MiB exactly", func(cm *corev1.ConfigMap) {
			cm.Data = map[string]string{"a": strings.Repeat("x", MaxDataSize-10)}
			cm.BinaryData = map[string][]byte{"b": make([]byte, 10)}
		}, nil},
		{"over 1 MiB together", func(cm *corev1.ConfigMap) {
			cm.Data = map[string]string{"a": strings.Repeat("x", MaxDataSize-10)}
			cm.BinaryData = map[string][]byte{"b": make([]byte, 11)}
		}, []string{errKey(tooLong, "data")}},
		{"no name", func(cm *corev1.ConfigMap) { cm.Name = "" }, []string{errKey(required, "metadata.name")}},
		{"no namespace", func(cm *corev1.ConfigMap) { cm.Namespace = "" }, []string{errKey(required, "metadata.namespace")}},
	})
}

func TestConfigMapImmutable(t *testing.T) {
	immutable := func() *corev1.ConfigMap {
		cm := stored(configMapResource, validConfigMap())
		cm.Immutable = ptrTo(true)
		return cm
	}
	runUpdate(t, configMapResource, false, immutable, []validationCase[*corev1.ConfigMap]{
		{"labels may change", func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"a": "b"} }, nil},
		{"data", func(cm *corev1.ConfigMap) { cm.Data["app.conf"] = "port=81" }, []string{errKey(forbidden, "data")}},
		{"data key removed", func(cm *corev1.ConfigMap) { delete(cm.Data, "KEY_1") }, []string{errKey(forbidden, "data")}},
		{"binaryData", func(cm *corev1.ConfigMap) { cm.BinaryData = nil }, []string{errKey(forbidden, "binaryData")}},
		{"back to mutable", func(cm *corev1.ConfigMap) { cm.Immutable = ptrTo(false) }, []string{errKey(forbidden, "immutable")}},
		{"flag dropped", func(cm *corev1.ConfigMap) { cm.Immutable = nil }, []string{errKey(forbidden, "immutable")}},
	})
	mutable := func() *corev1.ConfigMap { return stored(configMapResource, validConfigMap()) }
	runUpdate(t, configMapResource, false, mutable, []validationCase[*corev1.ConfigMap]{
		{"mutable data", func(cm *corev1.ConfigMap) { cm.Data["app.conf"] = "port=81" }, nil},
		{"made immutable with a change", func(cm *corev1.ConfigMap) {
			cm.Data["app.conf"], cm.Immutable = "port=81", ptrTo(true)
		}, nil},
		{"bad key on update", func(cm *corev1.ConfigMap) { cm.Data["a/b"] = "x" }, []string{errKey(invalid, "data[a/b]")}},
		{"name", func(cm *corev1.ConfigMap) { cm.Name = "other" }, []string{errKey(invalid, "metadata.name")}},
	})
}

func TestConfigMapKeepsGeneration(t *testing.T) {
	old := stored(configMapResource, validConfigMap())
	old.Generation = 1
	cm := old.DeepCopy()
	cm.Generation, cm.Data["x"] = 9, "y"
	configMapResource.PrepareForUpdate(cm, old)
	if cm.Generation != 1 {
		t.Errorf("generation after an update = %d, want 1", cm.Generation)
	}
	st := old.DeepCopy()
	st.Data = nil
	configMapResource.PrepareForStatusUpdate(st, old)
	if len(st.Data) != len(old.Data) {
		t.Errorf("a status write changed data to %v", st.Data)
	}
}

func TestConfigMapRow(t *testing.T) {
	cm := validConfigMap()
	cm.CreationTimestamp = ago(3 * time.Hour)
	if diff := cmp.Diff([]interface{}{"settings", int64(4), "3h"}, configMapRow(cm, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	names := []string{}
	for _, c := range configMapResource.Columns {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Data", "Age"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}
