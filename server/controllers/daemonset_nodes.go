package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// podTemplateGenerationLabel carries, on a daemon pod, the template
// generation of its DaemonSet when the pod was made.
const podTemplateGenerationLabel = "pod-template-generation"

// daemonTolerations are what upstream adds to every daemon pod: a daemon
// keeps running through node problems and on cordoned nodes.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// hostNetworkToleration is added to the pods of host-network daemons,
// which don't need the pod network.
var hostNetworkToleration = corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// addDaemonTolerations adds the daemon tolerations to spec, replacing a
// toleration of the same key, operator, value and effect.
func addDaemonTolerations(spec *corev1.PodSpec) {
	add := func(t corev1.Toleration) {
		for i := range spec.Tolerations {
			if spec.Tolerations[i].MatchToleration(&t) {
				spec.Tolerations[i] = t
				return
			}
		}
		spec.Tolerations = append(spec.Tolerations, t)
	}
	for _, t := range daemonTolerations {
		add(t)
	}
	if spec.HostNetwork {
		add(hostNetworkToleration)
	}
}

// placement is what decides where a DaemonSet's pods run.
type placement struct {
	nodeName    string
	affinity    nodeaffinity.RequiredNodeAffinity
	tolerations []corev1.Toleration
}

func newPlacement(ds *appsv1.DaemonSet) *placement {
	t := &ds.Spec.Template.Spec
	pod := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: t.NodeSelector, Affinity: t.Affinity, Tolerations: slices.Clone(t.Tolerations), HostNetwork: t.HostNetwork}}
	addDaemonTolerations(&pod.Spec)
	return &placement{nodeName: t.NodeName, affinity: nodeaffinity.GetRequiredNodeAffinity(pod), tolerations: pod.Spec.Tolerations}
}

// shouldRunOn reports whether a daemon pod should be started on node, and
// whether one already there should keep running (it tolerates every
// NoExecute taint, though maybe not a NoSchedule one).
func shouldRunOn(p *placement, node *corev1.Node) (run, keep bool) {
	if p.nodeName != "" && p.nodeName != node.Name {
		return false, false
	}
	if ok, err := p.affinity.Match(node); !ok || err != nil {
		return false, false
	}
	run, keep = true, true
	for _, taint := range node.Spec.Taints {
		if taint.Effect != corev1.TaintEffectNoSchedule && taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if slices.ContainsFunc(p.tolerations, func(t corev1.Toleration) bool { return tolerates(t, taint) }) {
			continue
		}
		run = false
		if taint.Effect == corev1.TaintEffectNoExecute {
			keep = false
		}
	}
	return run, keep
}

// targetNode is the node a daemon pod is on or meant for: its nodeName,
// else the one node its required affinity names by metadata.name.
func targetNode(pod *corev1.Pod) (string, bool) {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName, true
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchFields) != 1 {
		return "", false
	}
	f := terms[0].MatchFields[0]
	if f.Key != metav1.ObjectNameField || f.Operator != corev1.NodeSelectorOpIn || len(f.Values) != 1 {
		return "", false
	}
	return f.Values[0], true
}

// nodeNameAffinity returns the node affinity that binds a pod to node: upstream
// replaces the template's required terms (the controller has checked
// them) with one metadata.name term and lets the scheduler bind.
func nodeNameAffinity(a *corev1.Affinity, node string) *corev1.Affinity {
	out := a.DeepCopy()
	if out == nil {
		out = &corev1.Affinity{}
	}
	if out.NodeAffinity == nil {
		out.NodeAffinity = &corev1.NodeAffinity{}
	}
	out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{
			Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
		}}}},
	}
	return out
}

// daemonPodTemplate is ds's template as its pods get it: with the daemon
// tolerations, the revision hash and the template generation.
func daemonPodTemplate(ds *appsv1.DaemonSet, hash string) *corev1.PodTemplateSpec {
	t := ds.Spec.Template.DeepCopy()
	addDaemonTolerations(&t.Spec)
	if gen, ok := ds.Annotations[appsv1.DeprecatedTemplateGeneration]; ok {
		t.Labels = cloneWith(t.Labels, podTemplateGenerationLabel, gen)
	}
	if hash != "" {
		t.Labels = cloneWith(t.Labels, appsv1.ControllerRevisionHashLabelKey, hash)
	}
	return t
}

// podUpdated reports whether pod runs ds's current template: by the
// revision hash, or by the template generation.
func podUpdated(ds *appsv1.DaemonSet, pod *corev1.Pod, hash string) bool {
	if hash != "" && pod.Labels[appsv1.ControllerRevisionHashLabelKey] == hash {
		return true
	}
	gen, ok := ds.Annotations[appsv1.DeprecatedTemplateGeneration]
	if _, err := strconv.ParseInt(gen, 10, 64); !ok || err != nil {
		return false
	}
	return pod.Labels[podTemplateGenerationLabel] == gen
}

// claimPods returns the pods ds controls after adopting orphans its
// selector matches and releasing its pods that no longer match.
func (c *DaemonSetController) claimPods(ctx context.Context, ds *appsv1.DaemonSet, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := podsToClaim(c.pods, ds.Namespace, ds.UID)
	if err != nil {
		return nil, err
	}
	rest := c.client.CoreV1().RESTClient()
	var owned []*corev1.Pod
	var errs []error
	adoptable := func() error { return c.checkAdoptable(ctx, ds) }
	for _, pod := range all {
		ref := metav1.GetControllerOf(pod)
		matches := sel.Matches(labels.Set(pod.Labels))
		switch {
		case ref != nil && ref.UID == ds.UID && (matches || pod.DeletionTimestamp != nil):
			owned = append(owned, pod)
		case ref != nil && ref.UID == ds.UID:
			errs = append(errs, ignoreNotFound(patchOwnerRefs(ctx, rest, "pods", pod, withoutOwner(pod.OwnerReferences, ds.UID))))
		case ref == nil && matches && pod.DeletionTimestamp == nil:
			if err := adoptable(); err != nil {
				adoptable = func() error { return err }
				continue
			}
			adoptable = func() error { return nil }
			refs := append(slices.Clone(pod.OwnerReferences), controllerRef(dsKind, &ds.ObjectMeta))
			if err := patchOwnerRefs(ctx, rest, "pods", pod, refs); err != nil {
				errs = append(errs, ignoreNotFound(err))
				continue
			}
			out := pod.DeepCopy()
			out.OwnerReferences = refs
			owned = append(owned, out)
		}
	}
	return owned, errors.Join(errs...)
}

// checkAdoptable re-reads ds from the API: only a live DaemonSet that is
// not being deleted may adopt (the cache may lag behind a delete).
func (c *DaemonSetController) checkAdoptable(ctx context.Context, ds *appsv1.DaemonSet) error {
	fresh, err := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if fresh.UID != ds.UID || fresh.DeletionTimestamp != nil {
		return fmt.Errorf("daemonset %q was replaced or is being deleted", ds.Name)
	}
	return nil
}

// podsByNode groups pods by the node they are on or meant for. Finished
// pods being deleted are left out unless withFinished is set.
func podsByNode(pods []*corev1.Pod, withFinished bool) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, p := range pods {
		finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if !withFinished && finished && p.DeletionTimestamp != nil {
			continue
		}
		if node, ok := targetNode(p); ok {
			out[node] = append(out[node], p)
		}
	}
	return out
}

// oldestFirst orders daemon pods scheduled first, then by age, then by
// name.
func oldestFirst(a, b *corev1.Pod) int {
	if c := cmpBool(a.Spec.NodeName == "", b.Spec.NodeName == ""); c != 0 {
		return c
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmpString(a.Name, b.Name)
}

// createDaemonPods creates one pod of ds for each of nodes, with a slow
// start (see slowStart).
func (c *DaemonSetController) createDaemonPods(ctx context.Context, key string, ds *appsv1.DaemonSet, nodes []string, hash string) error {
	tmpl := daemonPodTemplate(ds, hash)
	return slowStart(c.exp, key, len(nodes), func(i int) error { return c.createDaemonPod(ctx, key, ds, tmpl, nodes[i]) })
}

func (c *DaemonSetController) createDaemonPod(ctx context.Context, key string, ds *appsv1.DaemonSet, tmpl *corev1.PodTemplateSpec, node string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Namespace:       ds.Namespace,
			Labels:          maps(tmpl.Labels),
			Annotations:     maps(tmpl.Annotations),
			Finalizers:      slices.Clone(tmpl.Finalizers),
			OwnerReferences: []metav1.OwnerReference{controllerRef(dsKind, &ds.ObjectMeta)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	pod.Spec.Affinity = nodeNameAffinity(pod.Spec.Affinity, node)
	out, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.exp.creationObserved(key)
		if ctx.Err() == nil {
			c.rec.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	c.rec.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", out.Name)
	return nil
}

func (c *DaemonSetController) deleteDaemonPods(ctx context.Context, key string, ds *appsv1.DaemonSet, pods []*corev1.Pod) error {
	return parallel(len(pods), func(i int) error {
		p := pods[i]
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &p.UID},
		})
		if err != nil {
			c.exp.deletionObserved(key, p.Namespace+"/"+p.Name)
			if apierrors.IsNotFound(err) {
				return nil
			}
			if ctx.Err() == nil {
				c.rec.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			}
			return err
		}
		c.rec.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		return nil
	})
}

// syncNodes deletes del and creates a pod on each of create, at most
// BurstReplicas of each, recording expectations first.
func (c *DaemonSetController) syncNodes(ctx context.Context, key string, ds *appsv1.DaemonSet, del []*corev1.Pod, create []string, hash string) error {
	del = del[:min(len(del), c.opts.BurstReplicas)]
	create = create[:min(len(create), c.opts.BurstReplicas)]
	if len(del) == 0 && len(create) == 0 {
		return nil
	}
	keys := make([]string, len(del))
	for i, p := range del {
		keys[i] = p.Namespace + "/" + p.Name
	}
	c.exp.expect(key, len(create), keys)
	return errors.Join(c.createDaemonPods(ctx, key, ds, create, hash), c.deleteDaemonPods(ctx, key, ds, del))
}
