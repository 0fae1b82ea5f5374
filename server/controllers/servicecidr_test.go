package controllers

import (
	"context"
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestDefaultServiceCIDR checks that a ServiceCIDR kubernetes someone
// made with another range is marked not Ready, and that once deleted it
// is recreated with the server's range, Ready, and again after each
// delete.
func TestDefaultServiceCIDR(t *testing.T) {
	e := newEnv(t)
	cidrs := e.client.NetworkingV1().ServiceCIDRs()
	other := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceCIDRName},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.99.0.0/24"}}}
	if _, err := cidrs.Create(e.ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create other range: %v", err)
	}
	c, err := NewDefaultServiceCIDRController(e.client, e.factory.Networking().V1().ServiceCIDRs(), "10.43.0.0/24", e.lg)
	if err != nil {
		t.Fatalf("NewDefaultServiceCIDRController: %v", err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 1) })
	waitReady := func(what string, status metav1.ConditionStatus, cidr string, notUID types.UID) *networkingv1.ServiceCIDR {
		t.Helper()
		var got *networkingv1.ServiceCIDR
		e.eventually(what, func() error {
			var err error
			got, err = cidrs.Get(e.ctx, DefaultServiceCIDRName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, networkingv1.ServiceCIDRConditionReady)
			if got.UID == notUID || len(got.Spec.CIDRs) != 1 || got.Spec.CIDRs[0] != cidr || cond == nil || cond.Status != status {
				return fmt.Errorf("uid %s, cidrs %v, ready %+v; want %s, Ready %s", got.UID, got.Spec.CIDRs, cond, cidr, status)
			}
			return nil
		})
		return got
	}
	prev := waitReady("other range not ready", metav1.ConditionFalse, "10.99.0.0/24", "")
	for i := range 2 {
		if err := cidrs.Delete(e.ctx, DefaultServiceCIDRName, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
		prev = waitReady(fmt.Sprintf("default service cidr recreated (%d)", i), metav1.ConditionTrue, "10.43.0.0/24", prev.UID)
	}
}
