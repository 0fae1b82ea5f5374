package apiserver

import (
	"slices"
	"testing"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// TestFlowControlAPI drives both flow control kinds as the conformance
// specs do: discovery, create, list by label, watch, patch, status patch
// and update, delete and delete a collection.
func TestFlowControlAPI(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)

	list, err := ts.client.Discovery().ServerResourcesForGroupVersion("flowcontrol.apiserver.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"flowschemas", "flowschemas/status", "prioritylevelconfigurations", "prioritylevelconfigurations/status"} {
		if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == want }) {
			t.Errorf("flowcontrol.apiserver.k8s.io/v1 does not list %s", want)
		}
	}

	label := map[string]string{"e2e": "flow"}
	sel := metav1.ListOptions{LabelSelector: "e2e=flow"}
	fsc := ts.client.FlowcontrolV1().FlowSchemas()
	fsTemplate := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "fs-", Labels: label},
		Spec: flowcontrolv1.FlowSchemaSpec{
			MatchingPrecedence:         10000,
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "global-default"},
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:         []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "nobody"}}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
			}},
		},
	}
	var fs *flowcontrolv1.FlowSchema
	for range 3 {
		if fs, err = fsc.Create(ctx, fsTemplate, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create flowschema: %v", err)
		}
	}
	fsList, err := fsc.List(ctx, sel)
	if err != nil || len(fsList.Items) != 3 {
		t.Fatalf("list flowschemas = %d items, %v; want 3", len(fsList.Items), err)
	}
	w, err := fsc.Watch(ctx, metav1.ListOptions{LabelSelector: sel.LabelSelector, ResourceVersion: fsList.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	patched, err := fsc.Patch(ctx, fs.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"patched":"true"}},"spec":{"matchingPrecedence":9999}}`), metav1.PatchOptions{})
	if err != nil || patched.Spec.MatchingPrecedence != 9999 || patched.Generation != 2 {
		t.Fatalf("patch flowschema = %+v, %v", patched, err)
	}
	select {
	case ev := <-w.ResultChan():
		got, ok := ev.Object.(*flowcontrolv1.FlowSchema)
		if ev.Type != watch.Modified || !ok || got.Annotations["patched"] != "true" {
			t.Errorf("watch event = %s %T, want MODIFIED of the patched flowschema", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event for the patch")
	}
	stPatched, err := fsc.Patch(ctx, fs.Name, types.MergePatchType,
		[]byte(`{"spec":{"matchingPrecedence":5},"status":{"conditions":[{"type":"PatchStatusFailed","status":"False","reason":"e2e"}]}}`), metav1.PatchOptions{}, "status")
	if err != nil || len(stPatched.Status.Conditions) != 1 || stPatched.Spec.MatchingPrecedence != 9999 {
		t.Fatalf("patch flowschema status = %+v, %v; want the condition and the spec kept", stPatched, err)
	}
	stPatched.Status.Conditions = append(stPatched.Status.Conditions, flowcontrolv1.FlowSchemaCondition{Type: "StatusUpdateFailed", Status: flowcontrolv1.ConditionFalse})
	if up, err := fsc.UpdateStatus(ctx, stPatched, metav1.UpdateOptions{}); err != nil || len(up.Status.Conditions) != 2 {
		t.Fatalf("update flowschema status = %+v, %v", up, err)
	}
	if err := fsc.Delete(ctx, fs.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := fsc.DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		t.Fatal(err)
	}
	if l, err := fsc.List(ctx, sel); err != nil || len(l.Items) != 0 {
		t.Errorf("flowschemas after delete collection = %d, %v; want none", len(l.Items), err)
	}

	plc := ts.client.FlowcontrolV1().PriorityLevelConfigurations()
	pl, err := plc.Create(ctx, &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "pl-", Labels: label},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To(int32(2)),
				LimitResponse:            flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create priority level: %v", err)
	}
	pl, err = plc.Patch(ctx, pl.Name, types.MergePatchType, []byte(`{"spec":{"limited":{"nominalConcurrencyShares":4}}}`), metav1.PatchOptions{})
	if err != nil || *pl.Spec.Limited.NominalConcurrencyShares != 4 || *pl.Spec.Limited.LendablePercent != 0 {
		t.Fatalf("patch priority level = %+v, %v", pl, err)
	}
	pl.Status.Conditions = []flowcontrolv1.PriorityLevelConfigurationCondition{{Type: "StatusUpdateFailed", Status: flowcontrolv1.ConditionFalse}}
	pl, err = plc.UpdateStatus(ctx, pl, metav1.UpdateOptions{})
	if err != nil || len(pl.Status.Conditions) != 1 {
		t.Fatalf("update priority level status = %+v, %v", pl, err)
	}
	bad := pl.DeepCopy()
	bad.Spec.Limited.LimitResponse = flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeQueue}
	if _, err := plc.Update(ctx, bad, metav1.UpdateOptions{}); !hasFieldCause(err, "spec.limited.limitResponse.queuing") {
		t.Errorf("update to Queue without queuing: %v, want Invalid on spec.limited.limitResponse.queuing", err)
	}
	if err := plc.DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		t.Fatal(err)
	}
}
