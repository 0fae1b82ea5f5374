package auth

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// Admit decides a write on the object it would store, after Authorize
// has allowed the request: obj is the object as the request made it (a
// create's body, or the current object with an update or patch applied),
// before the server fills in what it owns; old is the current object, nil
// for a create. a names the request; for a create, a.Name is obj's name.
//
// Only nodes are restricted, by the rules of Kubernetes' NodeRestriction
// admission plugin:
//
//   - A node writes only its own Node: obj must be named as the node.
//   - spec.podCIDR and spec.podCIDRs are the server's to assign: a node may
//     not set them on create nor change them on update.
//   - A node may not set spec.configSource, nor change its taints on
//     update (it may register with taints, as a kubelet's
//     --register-with-taints does).
//   - Labels a node adds, changes or removes must not be in the
//     node-restriction.kubernetes.io/ namespace, nor any other
//     kubernetes.io or k8s.io label outside the set kubelets may set
//     (kubernetes.io/hostname, os, arch, topology and instance-type
//     labels, and the kubelet.kubernetes.io/ and node.kubernetes.io/
//     namespaces); so no node-role.kubernetes.io/ label.
//   - The kubernetes.io/hostname label a node sets or changes must be its
//     own name: it may not pose as another node's host.
//   - Through pods/status a node writes only the status of pods bound to
//     it: not their labels, annotations, finalizers, owner references or
//     spec (a relabelled pod would steer another Service's endpoints).
//
// Then Policy, if set, admits the write (RBAC's escalation checks).
//
// A denial's reason names the field or label and the rule. Admit is safe
// for concurrent use and does not change obj or old.
func (z *Authorizer) Admit(ctx context.Context, u User, a Attributes, obj, old runtime.Object) (allowed bool, reason string) {
	if ok, why := z.admitNodeWrite(u, a, obj, old); !ok {
		return false, why
	}
	if z.Policy != nil {
		return z.Policy.Admit(ctx, u, a, obj, old)
	}
	return true, "no restriction applies"
}

// admitNodeWrite applies the NodeRestriction rules of Admit.
func (z *Authorizer) admitNodeWrite(u User, a Attributes, obj, old runtime.Object) (allowed bool, reason string) {
	node, ok := NodeName(u)
	if !ok || a.APIGroup != "" {
		return true, "only nodes are restricted"
	}
	var err error
	switch {
	case a.Resource == "nodes" && (a.Subresource == "" || a.Subresource == "status"):
		err = admitNode(node, obj, old)
	case a.Resource == "pods" && a.Subresource == "status":
		err = admitPodStatus(node, obj, old)
	default:
		return true, "no node restriction applies"
	}
	if err != nil {
		return false, err.Error()
	}
	return true, "the write keeps to the node restrictions"
}

// admitNode applies the Node rules to a node's write of a Node.
func admitNode(node string, obj, old runtime.Object) error {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return fmt.Errorf("node %q may write only a Node here, not %T", node, obj)
	}
	if n.Name != node {
		return fmt.Errorf("node %q may not write Node %q: a node may write only its own Node", node, n.Name)
	}
	var on *corev1.Node
	if old != nil {
		if on, ok = old.(*corev1.Node); !ok {
			return fmt.Errorf("node %q may write only a Node here, not %T", node, old)
		}
	} else {
		on = &corev1.Node{}
	}
	if n.Spec.PodCIDR != on.Spec.PodCIDR || !slices.Equal(n.Spec.PodCIDRs, on.Spec.PodCIDRs) {
		return fmt.Errorf("node %q may not set spec.podCIDR or spec.podCIDRs: the server assigns a node's pod range", node)
	}
	if n.Spec.ConfigSource != nil && !apiequality.Semantic.DeepEqual(n.Spec.ConfigSource, on.Spec.ConfigSource) {
		return fmt.Errorf("node %q may not set spec.configSource", node)
	}
	if old != nil && !sameTaints(n.Spec.Taints, on.Spec.Taints) {
		return fmt.Errorf("node %q may not change spec.taints: its taints are set by the control plane", node)
	}
	changed := changedLabels(n.Labels, on.Labels)
	if bad := forbiddenNodeLabels(changed); len(bad) > 0 {
		return fmt.Errorf("node %q may not set, change or remove labels %s: labels in the %s namespace and kubernetes.io or k8s.io labels a kubelet may not set are the control plane's",
			node, strings.Join(bad, ", "), corev1.LabelNamespaceNodeRestriction)
	}
	if slices.Contains(changed, corev1.LabelHostname) {
		if h, set := n.Labels[corev1.LabelHostname]; set && h != node {
			return fmt.Errorf("node %q may not set label %s to %q: it must be the node's own name", node, corev1.LabelHostname, h)
		}
	}
	return nil
}

// admitPodStatus lets a node's pods/status write change only the status
// of a pod bound to it.
func admitPodStatus(node string, obj, old runtime.Object) error {
	p, ok := obj.(*corev1.Pod)
	op, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return fmt.Errorf("node %q may write only a Pod's status here, not %T", node, obj)
	}
	if op.Spec.NodeName != node {
		return fmt.Errorf("node %q may write the status only of pods with spec.nodeName %q", node, node)
	}
	var field string
	switch {
	case !maps.Equal(p.Labels, op.Labels):
		field = "metadata.labels"
	case !maps.Equal(p.Annotations, op.Annotations):
		field = "metadata.annotations"
	case !slices.Equal(p.Finalizers, op.Finalizers):
		field = "metadata.finalizers"
	case !apiequality.Semantic.DeepEqual(p.OwnerReferences, op.OwnerReferences):
		field = "metadata.ownerReferences"
	case !apiequality.Semantic.DeepEqual(p.Spec, op.Spec):
		field = "spec"
	default:
		return nil
	}
	return fmt.Errorf("node %q may not change %s through pods/status: a node writes only the status of its pods", node, field)
}

// changedLabels returns the keys added, changed or removed from old to
// cur, sorted.
func changedLabels(cur, old map[string]string) []string {
	var out []string
	for k, v := range cur {
		if ov, ok := old[k]; !ok || ov != v {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// forbiddenNodeLabels returns the keys of keys a node may not set on its
// Node: the node-restriction.kubernetes.io/ namespace, and kubernetes.io
// and k8s.io labels outside the kubelet's own set.
func forbiddenNodeLabels(keys []string) []string {
	var out []string
	for _, k := range keys {
		ns, _, found := strings.Cut(k, "/")
		if !found {
			continue
		}
		restricted := inDomain(ns, corev1.LabelNamespaceNodeRestriction)
		kube := inDomain(ns, "kubernetes.io") || inDomain(ns, "k8s.io")
		if restricted || kube && !kubeletapis.IsKubeletLabel(k) {
			out = append(out, k)
		}
	}
	return out
}

// inDomain reports whether ns is domain or a subdomain of it.
func inDomain(ns, domain string) bool {
	return ns == domain || strings.HasSuffix(ns, "."+domain)
}

// sameTaints compares taints as the API shows them: timeAdded to the
// second, since a write that went through JSON has lost what was finer.
func sameTaints(a, b []corev1.Taint) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.Taint) bool {
		if x.Key != y.Key || x.Value != y.Value || x.Effect != y.Effect || (x.TimeAdded == nil) != (y.TimeAdded == nil) {
			return false
		}
		return x.TimeAdded == nil || x.TimeAdded.Unix() == y.TimeAdded.Unix()
	})
}
