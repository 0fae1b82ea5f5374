package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// history returns ds's current revision, creating it when its template
// has none (or renumbering the one it has as the newest), and the old
// ones.
func (c *DaemonSetController) history(ctx context.Context, ds *appsv1.DaemonSet, sel labels.Selector) (*appsv1.ControllerRevision, []*appsv1.ControllerRevision, error) {
	revs, err := claimRevisions(ctx, c.client, c.revs, dsKind, &ds.ObjectMeta, sel)
	if err != nil {
		return nil, nil, err
	}
	data, err := templatePatch(&ds.Spec.Template)
	if err != nil {
		return nil, nil, err
	}
	var current, old []*appsv1.ControllerRevision
	for _, rev := range revs {
		if revisionMatches(rev, data) {
			current = append(current, rev)
		} else {
			old = append(old, rev)
		}
	}
	next := maxRevision(old) + 1
	if len(current) == 0 {
		cur, err := c.snapshot(ctx, ds, next)
		return cur, old, err
	}
	// Two revisions of one template (a race of two syncs): keep the
	// newest.
	slices.SortFunc(current, func(a, b *appsv1.ControllerRevision) int { return cmp.Compare(b.Revision, a.Revision) })
	old = append(old, current[1:]...)
	cur := current[0]
	if cur.Revision < next {
		if cur, err = setRevisionNumber(ctx, c.client, cur, next); err != nil {
			return nil, nil, err
		}
	}
	if cur.Labels[appsv1.ControllerRevisionHashLabelKey] == "" {
		return nil, nil, fmt.Errorf("revision %q has no %s label", cur.Name, appsv1.ControllerRevisionHashLabelKey)
	}
	return cur, old, nil
}

// snapshot creates revision n of ds's template. A name taken by another
// template counts a collision in ds's status, so the next sync hashes
// to another name.
func (c *DaemonSetController) snapshot(ctx context.Context, ds *appsv1.DaemonSet, n int64) (*appsv1.ControllerRevision, error) {
	rev, err := newRevision(dsKind, &ds.ObjectMeta, &ds.Spec.Template, ds.Status.CollisionCount, n)
	if err != nil {
		return nil, err
	}
	out, err := createRevision(ctx, c.client, rev)
	if !errors.Is(err, errRevisionCollision) {
		return out, err
	}
	st := ds.DeepCopy()
	st.Status.CollisionCount = ptrInt32(int(ptrValue(ds.Status.CollisionCount)) + 1)
	if _, uerr := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, st, metav1.UpdateOptions{}); uerr != nil {
		return nil, errors.Join(err, uerr)
	}
	return nil, err
}

// manage creates the missing daemon pods and deletes those that must go:
// on nodes that can't keep them, failed ones, extra ones, and those meant
// for nodes that no longer exist.
func (c *DaemonSetController) manage(ctx context.Context, key string, ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod, hash string) error {
	byNode := podsByNode(pods, true)
	p := newPlacement(ds)
	var create []string
	var del []*corev1.Pod
	known := make(map[string]bool, len(nodes))
	for _, node := range nodes {
		known[node.Name] = true
		needs, gone := c.podsShouldBeOnNode(ds, p, node, byNode[node.Name], hash)
		if needs {
			create = append(create, node.Name)
		}
		del = append(del, gone...)
	}
	for name, onNode := range byNode {
		if !known[name] {
			del = append(del, live(onNode)...)
		}
	}
	return c.syncNodes(ctx, key, ds, del, create, hash)
}

// live returns the pods not being deleted.
func live(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// podsShouldBeOnNode says whether node needs a new daemon pod and which of
// its pods to delete.
func (c *DaemonSetController) podsShouldBeOnNode(ds *appsv1.DaemonSet, p *placement, node *corev1.Node, pods []*corev1.Pod, hash string) (bool, []*corev1.Pod) {
	run, keep := shouldRunOn(p, node)
	switch {
	case run && len(pods) == 0:
		return true, nil
	case !keep:
		return false, live(pods)
	case len(pods) == 0:
		return false, nil
	}
	var running, del []*corev1.Pod
	for _, pod := range live(pods) {
		switch pod.Status.Phase {
		case corev1.PodFailed:
			if c.failedPodBackoff(ds, node.Name) {
				continue
			}
			c.rec.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it", pod.Namespace, pod.Name, node.Name)
			del = append(del, pod)
		case corev1.PodSucceeded:
			del = append(del, pod)
		default:
			running = append(running, pod)
		}
	}
	return false, append(del, extraPods(ds, running, hash, c.opts.Now())...)
}

// failedPodBackoff reports whether deleting another failed pod of ds on
// node must wait (a node that keeps failing the pod is not hammered); if
// so ds is synced again when the wait is over.
func (c *DaemonSetController) failedPodBackoff(ds *appsv1.DaemonSet, node string) bool {
	id, now := string(ds.UID)+"/"+node, c.opts.Now()
	if c.backoff.IsInBackOffSinceUpdate(id, now) {
		c.loop.addAfter(ds.Namespace+"/"+ds.Name, c.backoff.Get(id))
		return true
	}
	c.backoff.Next(id, now)
	return false
}

// extraPods picks the running pods of a node to delete. Without surge one
// pod runs, the oldest. With surge a new pod runs beside an old one only
// while the new one is not yet available and the old one is ready.
func extraPods(ds *appsv1.DaemonSet, running []*corev1.Pod, hash string, now time.Time) []*corev1.Pod {
	if len(running) <= 1 {
		return nil
	}
	sorted := slices.Clone(running)
	slices.SortFunc(sorted, oldestFirst)
	if maxSurgeOf(ds) == nil {
		return sorted[1:]
	}
	var newest, oldest *corev1.Pod // the oldest updated and the oldest not updated
	var del []*corev1.Pod
	for _, pod := range sorted {
		switch {
		case podUpdated(ds, pod, hash) && newest == nil:
			newest = pod
		case !podUpdated(ds, pod, hash) && oldest == nil:
			oldest = pod
		default:
			del = append(del, pod)
		}
	}
	if newest != nil && oldest != nil {
		if avail, _ := podAvailable(newest, minReady(ds), now); !podReady(oldest) || avail {
			del = append(del, oldest)
		}
	}
	return del
}

func minReady(ds *appsv1.DaemonSet) time.Duration {
	return time.Duration(ds.Spec.MinReadySeconds) * time.Second
}

// maxSurgeOf returns ds's maxSurge when it is a rolling update that
// surges, nil otherwise.
func maxSurgeOf(ds *appsv1.DaemonSet) *intstr.IntOrString {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil {
		return nil
	}
	if n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 100, true); err != nil || n == 0 {
		return nil
	}
	return ru.MaxSurge
}

// updateBudget resolves maxSurge and maxUnavailable against the number
// of nodes that should run ds (rounding up, as upstream), marking those
// nodes in byNode; both zero would block the update, so unavailable is
// then 1.
func updateBudget(ds *appsv1.DaemonSet, p *placement, nodes []*corev1.Node, byNode map[string][]*corev1.Pod) (surge, unavailable int) {
	desired := 0
	for _, node := range nodes {
		if run, _ := shouldRunOn(p, node); run {
			desired++
			if _, ok := byNode[node.Name]; !ok {
				byNode[node.Name] = nil
			}
		}
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		surge = scaledValue(ru.MaxSurge, desired, true)
		unavailable = scaledValue(ru.MaxUnavailable, desired, true)
	}
	if desired > 0 && surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// updatedAndOld returns the one updated and the one old pod (either may be
// nil) among a node's pods not being deleted; ok is false when there are
// more, which manage sorts out first.
func updatedAndOld(ds *appsv1.DaemonSet, pods []*corev1.Pod, hash string) (updated, old *corev1.Pod, ok bool) {
	for _, pod := range live(pods) {
		if podUpdated(ds, pod, hash) {
			if updated != nil {
				return nil, nil, false
			}
			updated = pod
		} else {
			if old != nil {
				return nil, nil, false
			}
			old = pod
		}
	}
	return updated, old, true
}

// rollingUpdate replaces old pods, within maxUnavailable by deleting them
// (manage then creates the new ones) or within maxSurge by starting new
// ones beside them.
func (c *DaemonSetController) rollingUpdate(ctx context.Context, key string, ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod, hash string) error {
	byNode := podsByNode(pods, false)
	p := newPlacement(ds)
	surge, maxUnavailable := updateBudget(ds, p, nodes, byNode)
	names := make([]string, 0, len(byNode))
	for name := range byNode {
		names = append(names, name)
	}
	slices.Sort(names) // a stable order of candidates
	r := &rollout{ds: ds, hash: hash, byNode: byNode, names: names, now: c.opts.Now()}
	if surge == 0 {
		return c.syncNodes(ctx, key, ds, r.replace(maxUnavailable), nil, hash)
	}
	del, create := r.surge(surge, p, nodes)
	return c.syncNodes(ctx, key, ds, del, create, hash)
}

// rollout is one rolling update step's view of a DaemonSet's pods.
type rollout struct {
	ds     *appsv1.DaemonSet
	hash   string
	byNode map[string][]*corev1.Pod
	names  []string // of byNode, sorted
	now    time.Time
}

func (r *rollout) available(pod *corev1.Pod) bool {
	ok, _ := podAvailable(pod, minReady(r.ds), r.now)
	return ok
}

// replace returns the old pods to delete: every unavailable one, and
// available ones while fewer than maxUnavailable nodes are without an
// available pod.
func (r *rollout) replace(maxUnavailable int) []*corev1.Pod {
	unavailable := 0
	var del, candidates []*corev1.Pod
	for _, name := range r.names {
		updated, old, ok := updatedAndOld(r.ds, r.byNode[name], r.hash)
		switch {
		case !ok, old == nil && updated == nil, old != nil && updated != nil:
			unavailable++ // manage sorts the node out first
		case updated != nil:
			if !r.available(updated) {
				unavailable++
			}
		case !r.available(old):
			del = append(del, old)
		case unavailable < maxUnavailable:
			candidates = append(candidates, old)
		}
	}
	n := min(max(maxUnavailable-unavailable, 0), len(candidates))
	return append(del, candidates[:n]...)
}

// surge returns the old pods whose new pod is available (to delete) and
// the nodes to start a new pod on: every node whose old pod is
// unavailable, and more while fewer than maxSurge new pods are not yet
// available.
func (r *rollout) surge(maxSurge int, p *placement, nodes []*corev1.Node) ([]*corev1.Pod, []string) {
	nodeByName := make(map[string]*corev1.Node, len(nodes))
	for _, n := range nodes {
		nodeByName[n.Name] = n
	}
	surging := 0
	var del []*corev1.Pod
	var create, candidates []string
	for _, name := range r.names {
		updated, old, ok := updatedAndOld(r.ds, r.byNode[name], r.hash)
		switch {
		case !ok:
			surging++
		case old == nil:
		case updated == nil && !r.available(old):
			if node := nodeByName[name]; node != nil {
				if run, _ := shouldRunOn(p, node); run {
					create = append(create, name)
				}
			}
		case updated == nil && surging < maxSurge:
			candidates = append(candidates, name)
		case updated == nil:
		case !r.available(updated):
			surging++
		default:
			del = append(del, old)
		}
	}
	n := min(max(maxSurge-surging, 0), len(candidates))
	return del, append(create, candidates[:n]...)
}

// cleanupHistory deletes the oldest revisions beyond
// revisionHistoryLimit that no pod of ds runs.
func (c *DaemonSetController) cleanupHistory(ctx context.Context, ds *appsv1.DaemonSet, pods []*corev1.Pod, old []*appsv1.ControllerRevision) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	if len(old) <= limit {
		return nil
	}
	liveHashes := map[string]bool{}
	for _, p := range pods {
		if h := p.Labels[appsv1.ControllerRevisionHashLabelKey]; h != "" {
			liveHashes[h] = true
		}
	}
	return truncateHistory(ctx, c.client, old, limit, liveHashes)
}
