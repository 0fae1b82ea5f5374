package apiserver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// invalidField checks that err is a 422 Invalid whose causes name field.
func invalidField(t *testing.T, what string, err error, field string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("%s = %v, want 422 Invalid", what, err)
	}
	st := err.(apierrors.APIStatus).Status()
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Field == field {
				return
			}
		}
	}
	t.Errorf("%s: causes %+v, want one naming %s", what, st.Details, field)
}

// clients returns a protobuf client (client-go's default) and a JSON one
// (kubectl's) of ts.
func (ts *testServer) clients(t *testing.T) map[string]kubernetes.Interface {
	return map[string]kubernetes.Interface{"protobuf": ts.client, "json": ts.jsonClient(t)}
}

// TestConfigDataRefused sends the bad ConfigMaps and Secrets a user may
// send through the whole API: each is a 422 naming the field, and
// nothing is stored.
func TestConfigDataRefused(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	for name, cs := range ts.clients(t) {
		t.Run(name, func(t *testing.T) {
			secrets := cs.CoreV1().Secrets("default")
			big := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Data: map[string][]byte{"blob": make([]byte, 3<<19)}}
			_, err := secrets.Create(ctx, big, metav1.CreateOptions{})
			invalidField(t, "creating a 1.5 MiB Secret", err, "data")
			if _, err := secrets.Get(ctx, "big", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Get of the refused Secret = %v, want NotFound", err)
			}
			cms := cs.CoreV1().ConfigMaps("default")
			slash := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "slash"}, Data: map[string]string{"a/b": "x"}}
			_, err = cms.Create(ctx, slash, metav1.CreateOptions{})
			invalidField(t, "creating a ConfigMap with key a/b", err, "data[a/b]")
			if _, err := cms.Get(ctx, "slash", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Get of the refused ConfigMap = %v, want NotFound", err)
			}
		})
	}
}

// TestImmutableConfigMap changes an immutable ConfigMap by update and by
// patch: both are refused naming data, and the stored data stays.
func TestImmutableConfigMap(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	cms := ts.jsonClient(t).CoreV1().ConfigMaps("default")
	yes := true
	cm, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "fixed"}, Data: map[string]string{"k": "v1"}, Immutable: &yes,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	cm.Data["k"] = "v2"
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	invalidField(t, "updating an immutable ConfigMap's data", err, "data")
	_, err = cms.Patch(ctx, "fixed", "application/merge-patch+json", []byte(`{"immutable":false}`), metav1.PatchOptions{})
	invalidField(t, "making an immutable ConfigMap mutable", err, "immutable")
	got, err := cms.Get(ctx, "fixed", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Data["k"] != "v1" || got.Immutable == nil || !*got.Immutable || got.ResourceVersion != cm.ResourceVersion {
		t.Errorf("after refused writes: data %v, immutable %v, resourceVersion %s; want k=v1, true, %s",
			got.Data, got.Immutable, got.ResourceVersion, cm.ResourceVersion)
	}
}

// TestSecretStringDataAndTypeSelector writes stringData (merged into data,
// never returned) and selects Secrets by type.
func TestSecretStringDataAndTypeSelector(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	secrets := ts.jsonClient(t).CoreV1().Secrets("default")
	s, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "login"},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "admin", "password": "pw"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := map[string][]byte{"username": []byte("admin"), "password": []byte("pw")}
	if diff := cmp.Diff(want, s.Data); diff != "" || s.StringData != nil {
		t.Errorf("created data (-want +got):\n%s\nstringData %v, want none", diff, s.StringData)
	}
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	list, err := secrets.List(ctx, metav1.ListOptions{FieldSelector: "type=kubernetes.io/basic-auth"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "login" {
		t.Errorf("secrets of type basic-auth = %d items, want only login", len(list.Items))
	}
	s.Type = corev1.SecretTypeOpaque
	_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
	invalidField(t, "changing a Secret's type", err, "type")
}
