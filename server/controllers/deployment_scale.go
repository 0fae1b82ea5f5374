package controllers

import (
	"context"
	"math"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
)

// isScalingEvent reports whether d's replicas changed since its active
// ReplicaSets were last sized (their desired-replicas annotation): such a
// change is a resize, not a rollout.
func isScalingEvent(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) bool {
	want := strconv.Itoa(replicasOf(d.Spec.Replicas))
	for _, rs := range activeReplicaSets(rsList) {
		if got, ok := rs.Annotations[desiredReplicasAnnotation]; ok && got != want {
			return true
		}
	}
	return false
}

// syncScale resizes d without rolling it out (it is paused, or only its
// replicas changed): the ReplicaSets grow or shrink in proportion, and a
// paused Deployment's old ReplicaSets beyond the history limit go.
func (c *DeploymentController) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, olds, d, err := c.replicaSets(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := append(slices.Clone(olds), newRS)
	if newRS == nil {
		all = slices.Clone(olds)
	}
	if err := c.scale(ctx, d, newRS, all); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := c.cleanup(ctx, d, olds); err != nil {
			return err
		}
	}
	return c.syncStatusOnly(ctx, d, rsList)
}

// scale sizes d's ReplicaSets to its replicas: the only active (or
// newest) one takes them all; a saturated new one leaves the old ones
// none; otherwise, during a rolling update, the change (within replicas
// + maxSurge) is shared in proportion to their sizes, the leftover going
// to the largest.
func (c *DeploymentController) scale(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, all []*appsv1.ReplicaSet) error {
	want := replicasOf(d.Spec.Replicas)
	active := activeReplicaSets(all)
	if target := activeOrLatest(newRS, all, active); target != nil {
		_, _, err := c.scaleRS(ctx, d, target, want)
		return err
	}
	if newRS != nil && replicasOf(newRS.Spec.Replicas) == want && int(newRS.Status.AvailableReplicas) == want {
		for _, rs := range active {
			if rs != newRS {
				if _, _, err := c.scaleRS(ctx, d, rs, 0); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		return nil
	}
	sizes := proportionalSizes(d, active)
	for _, rs := range active {
		if _, _, err := c.scaleRS(ctx, d, rs, sizes[rs.Name]); err != nil {
			return err
		}
	}
	return nil
}

// activeOrLatest is the ReplicaSet that takes all replicas: the only
// active one, or with none active the new one (else the newest).
func activeOrLatest(newRS *appsv1.ReplicaSet, all, active []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	switch len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		if len(all) > 0 {
			sorted := slices.Clone(all)
			slices.SortStableFunc(sorted, byCreation)
			return sorted[len(sorted)-1]
		}
	case 1:
		return active[0]
	}
	return nil
}

// proportionalSizes shares the change from the active ReplicaSets' total
// to replicas + maxSurge among them in proportion to their sizes against
// the size of the Deployment they were last scaled for (max-replicas
// annotation); the leftover of rounding goes to the first, the largest.
func proportionalSizes(d *appsv1.Deployment, active []*appsv1.ReplicaSet) map[string]int {
	surge, _ := fenceposts(d)
	allowed := 0
	if replicasOf(d.Spec.Replicas) > 0 {
		allowed = replicasOf(d.Spec.Replicas) + surge
	}
	toAdd := allowed - specReplicas(active)
	sorted := slices.Clone(active)
	slices.SortStableFunc(sorted, func(a, b *appsv1.ReplicaSet) int {
		if c := replicasOf(b.Spec.Replicas) - replicasOf(a.Spec.Replicas); c != 0 {
			return c
		}
		if toAdd > 0 {
			return -byCreation(a, b) // newer first when growing
		}
		return byCreation(a, b) // older first when shrinking
	})
	sizes := make(map[string]int, len(sorted))
	added := 0
	for _, rs := range sorted {
		p := proportion(d, rs, toAdd, added, allowed)
		sizes[rs.Name] = replicasOf(rs.Spec.Replicas) + p
		added += p
	}
	if len(sorted) > 0 && toAdd != 0 {
		sizes[sorted[0].Name] = max(sizes[sorted[0].Name]+toAdd-added, 0)
	}
	return sizes
}

// proportion is rs's share of toAdd, of which added is taken already.
func proportion(d *appsv1.Deployment, rs *appsv1.ReplicaSet, toAdd, added, allowed int) int {
	n := replicasOf(rs.Spec.Replicas)
	if n == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	var fraction int
	if replicasOf(d.Spec.Replicas) == 0 {
		fraction = -n
	} else {
		was, err := strconv.Atoi(rs.Annotations[maxReplicasAnnotation])
		if err != nil || was <= 0 {
			was = int(d.Status.Replicas)
		}
		if was <= 0 {
			return 0
		}
		fraction = int(math.Round(float64(n*allowed)/float64(was))) - n
	}
	if toAdd > 0 {
		return min(fraction, toAdd-added)
	}
	return max(fraction, toAdd-added)
}
