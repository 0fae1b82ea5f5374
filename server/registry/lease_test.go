package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validLease() *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptrTo("node-1"),
			LeaseDurationSeconds: ptrTo(int32(40)),
		},
	}
	leaseResource.PrepareForCreate(l)
	return l
}

func TestValidateLease(t *testing.T) {
	runValidation(t, leaseResource, validLease, []validationCase[*coordinationv1.Lease]{
		{name: "valid"},
		{"zero duration", func(l *coordinationv1.Lease) { l.Spec.LeaseDurationSeconds = ptrTo(int32(0)) },
			[]string{errKey(invalid, "spec.leaseDurationSeconds")}},
		{"negative transitions", func(l *coordinationv1.Lease) { l.Spec.LeaseTransitions = ptrTo(int32(-1)) },
			[]string{errKey(invalid, "spec.leaseTransitions")}},
		{"unknown strategy", func(l *coordinationv1.Lease) {
			l.Spec.Strategy = ptrTo(coordinationv1.CoordinatedLeaseStrategy("Youngest"))
		}, []string{errKey(notSupported, "spec.strategy")}},
		{"preferred holder without strategy", func(l *coordinationv1.Lease) { l.Spec.PreferredHolder = ptrTo("node-2") },
			[]string{errKey(forbidden, "spec.preferredHolder")}},
		{"preferred holder with strategy", func(l *coordinationv1.Lease) {
			l.Spec.PreferredHolder, l.Spec.Strategy = ptrTo("node-2"), ptrTo(coordinationv1.OldestEmulationVersion)
		}, nil},
		{"bad name", func(l *coordinationv1.Lease) { l.Name = "Node_1" }, []string{errKey(invalid, "metadata.name")}},
	})
}

func TestLeaseRow(t *testing.T) {
	l := validLease()
	l.CreationTimestamp = ago(2 * time.Minute)
	want := []interface{}{"node-1", "node-1", "2m"}
	if diff := cmp.Diff(want, leaseRow(l, testNow)); diff != "" {
		t.Errorf("leaseRow (-want +got):\n%s", diff)
	}
}
