package apiserver

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// A CSI volume and a claim of its class go through what a client does to
// them: create, list by label, patch, read the status subresource, patch
// and update status, delete (held by the protection finalizers until they
// are removed) and delete as a collection by label.
func TestVolumeAndClaimLifecycle(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pvs := ts.client.CoreV1().PersistentVolumes()
	pvcs := ts.client.CoreV1().PersistentVolumeClaims("default")
	class := "fast"
	pv, err := pvs.Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "vol-", Labels: map[string]string{"e2e": "x"}},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
			StorageClassName: class,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: "inline-driver.example.com", VolumeHandle: "h1"},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create PV: %v", err)
	}
	if !slices.Contains(pv.Finalizers, "kubernetes.io/pv-protection") || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("created PV: finalizers %v, reclaim policy %q", pv.Finalizers, pv.Spec.PersistentVolumeReclaimPolicy)
	}
	pvc, err := pvcs.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "pvc-"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
			StorageClassName: &class,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create PVC: %v", err)
	}

	list, err := pvs.List(ctx, metav1.ListOptions{LabelSelector: "e2e=x"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != pv.Name {
		t.Fatalf("list PVs by label: %v %v", list, err)
	}
	patched, err := pvs.Patch(ctx, pv.Name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"p":"patched"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Labels["p"] != "patched" || patched.ResourceVersion == pv.ResourceVersion {
		t.Fatalf("patch PV: %v %v", patched, err)
	}
	patchedClaim, err := pvcs.Patch(ctx, pvc.Name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"p":"patched"}}}`), metav1.PatchOptions{})
	if err != nil || patchedClaim.Labels["p"] != "patched" {
		t.Fatalf("patch PVC: %v %v", patchedClaim, err)
	}

	// The status subresource reads as the object.
	dyn := ts.dynamicClient(t)
	u, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}).Namespace("default").
		Get(ctx, pvc.Name, metav1.GetOptions{}, "status")
	if err != nil {
		t.Fatalf("get PVC status: %v", err)
	}
	var claimStatus corev1.PersistentVolumeClaim
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), &claimStatus); err != nil || claimStatus.Status.Phase != corev1.ClaimPending {
		t.Errorf("PVC status read: phase %q, %v", claimStatus.Status.Phase, err)
	}
	u, err = dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}).Get(ctx, pv.Name, metav1.GetOptions{}, "status")
	if err != nil {
		t.Fatalf("get PV status: %v", err)
	}
	var volumeStatus corev1.PersistentVolume
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), &volumeStatus); err != nil || volumeStatus.Status.Phase != corev1.VolumePending {
		t.Errorf("PV status read: phase %q, %v", volumeStatus.Status.Phase, err)
	}

	// Status patches and updates change the status only.
	patchedClaim, err = pvcs.Patch(ctx, pvc.Name, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"ignored":"yes"}},"status":{"conditions":[{"type":"StatusPatched","status":"True","reason":"E2E patchedStatus","message":"Set from e2e test"}]}}`),
		metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatalf("patch PVC status: %v", err)
	}
	if len(patchedClaim.Status.Conditions) != 1 || patchedClaim.Status.Conditions[0].Reason != "E2E patchedStatus" {
		t.Errorf("patched PVC conditions: %+v", patchedClaim.Status.Conditions)
	}
	patched, err = pvs.Patch(ctx, pv.Name, types.MergePatchType, []byte(`{"status":{"message":"StatusPatched","reason":"E2E patchStatus"}}`), metav1.PatchOptions{}, "status")
	if err != nil || patched.Status.Reason != "E2E patchStatus" || patched.Status.Message != "StatusPatched" {
		t.Fatalf("patch PV status: %+v %v", patched.Status, err)
	}
	patchedClaim.Status.Conditions = append(patchedClaim.Status.Conditions, corev1.PersistentVolumeClaimCondition{
		Type: "StatusUpdated", Status: corev1.ConditionTrue, Reason: "E2E updateStatus",
	})
	patchedClaim.Spec.VolumeName = "not-by-status"
	updatedClaim, err := pvcs.UpdateStatus(ctx, patchedClaim, metav1.UpdateOptions{})
	if err != nil || len(updatedClaim.Status.Conditions) != 2 || updatedClaim.Spec.VolumeName != "" {
		t.Fatalf("update PVC status: %+v %v", updatedClaim, err)
	}
	patched.Status.Reason = "E2E updateStatus"
	updated, err := pvs.UpdateStatus(ctx, patched, metav1.UpdateOptions{})
	if err != nil || updated.Status.Reason != "E2E updateStatus" {
		t.Fatalf("update PV status: %+v %v", updated, err)
	}

	// Labels updated, claims list across namespaces by label.
	updatedClaim.Labels = map[string]string{pvc.Name: "updated"}
	if _, err := pvcs.Update(ctx, updatedClaim, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update PVC: %v", err)
	}
	all, err := ts.client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{LabelSelector: pvc.Name + "=updated"})
	if err != nil || len(all.Items) != 1 {
		t.Fatalf("list PVCs in all namespaces by label: %v %v", all, err)
	}

	// Deletion as a collection: the finalizer holds each until it is
	// removed.
	if err := pvcs.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: pvc.Name + "=updated"}); err != nil {
		t.Fatalf("delete PVCs by label: %v", err)
	}
	if err := pvs.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "p=patched"}); err != nil {
		t.Fatalf("delete PVs by label: %v", err)
	}
	held, err := pvcs.Get(ctx, pvc.Name, metav1.GetOptions{})
	if err != nil || held.DeletionTimestamp == nil {
		t.Fatalf("deleted PVC before its finalizer is removed: %+v %v", held, err)
	}
	// Deleting it again, as a cleanup loop does, succeeds.
	if err := pvcs.Delete(ctx, pvc.Name, metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete a PVC being deleted: %v", err)
	}
	if _, err := pvcs.Patch(ctx, pvc.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("remove PVC finalizer: %v", err)
	}
	if _, err := pvs.Patch(ctx, pv.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("remove PV finalizer: %v", err)
	}
	if _, err := pvcs.Get(ctx, pvc.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("PVC after its finalizer was removed: %v", err)
	}
	if _, err := pvs.Get(ctx, pv.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("PV after its finalizer was removed: %v", err)
	}
}
