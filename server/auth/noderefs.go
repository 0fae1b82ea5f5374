package auth

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// NodePodLister lists the pods bound to a node, for the node rules that
// let a node read only what its pods use. NodePods returns the pods of
// namespace bound to node (none is not an error); the pods are shared and
// must not be modified. It must be safe to call concurrently.
type NodePodLister interface {
	NodePods(ctx context.Context, node, namespace string) ([]*corev1.Pod, error)
}

// NodePodsFunc adapts a function to NodePodLister.
type NodePodsFunc func(ctx context.Context, node, namespace string) ([]*corev1.Pod, error)

// NodePods calls f.
func (f NodePodsFunc) NodePods(ctx context.Context, node, namespace string) ([]*corev1.Pod, error) {
	return f(ctx, node, namespace)
}

// nodeReferenced are the resources a node may get only when a pod bound
// to it uses the object, with where pods name objects of each.
var nodeReferenced = map[string]*references{
	"secrets": {
		volume: secretVolume,
		projection: func(p *corev1.VolumeProjection) *corev1.LocalObjectReference {
			if p.Secret == nil {
				return nil
			}
			return &p.Secret.LocalObjectReference
		},
		envFrom: func(f *corev1.EnvFromSource) *corev1.LocalObjectReference {
			if f.SecretRef == nil {
				return nil
			}
			return &f.SecretRef.LocalObjectReference
		},
		env: func(v *corev1.EnvVarSource) *corev1.LocalObjectReference {
			if v.SecretKeyRef == nil {
				return nil
			}
			return &v.SecretKeyRef.LocalObjectReference
		},
		imagePull: true,
	},
	"configmaps": {
		volume: func(v *corev1.VolumeSource) []string {
			if v.ConfigMap == nil {
				return nil
			}
			return []string{v.ConfigMap.Name}
		},
		projection: func(p *corev1.VolumeProjection) *corev1.LocalObjectReference {
			if p.ConfigMap == nil {
				return nil
			}
			return &p.ConfigMap.LocalObjectReference
		},
		envFrom: func(f *corev1.EnvFromSource) *corev1.LocalObjectReference {
			if f.ConfigMapRef == nil {
				return nil
			}
			return &f.ConfigMapRef.LocalObjectReference
		},
		env: func(v *corev1.EnvVarSource) *corev1.LocalObjectReference {
			if v.ConfigMapKeyRef == nil {
				return nil
			}
			return &v.ConfigMapKeyRef.LocalObjectReference
		},
	},
}

// authorizeNodeReference lets a node read a Secret or ConfigMap that a
// pod bound to it uses (volumes, projected sources, env, envFrom, image
// pull secrets): get it, or list and watch it alone (the caller sets Name
// from a metadata.name field selector). Other lists and watches would
// show a node every object of the kind, so they are refused, and so is
// everything without a NodePodLister.
func (z *Authorizer) authorizeNodeReference(ctx context.Context, node string, a Attributes) (bool, string) {
	switch {
	case !readVerbs[a.Verb]:
		return false, fmt.Sprintf("node %q may only read the %s its pods use, one by name", node, a.Resource)
	case a.Name == "" || a.Namespace == "":
		return false, fmt.Sprintf("node %q may get %s only by namespace and name", node, a.Resource)
	case z.NodePods == nil:
		return false, fmt.Sprintf("cannot tell which %s the pods of node %q use", a.Resource, node)
	}
	pods, err := z.NodePods.NodePods(ctx, node, a.Namespace)
	if err != nil {
		return false, fmt.Sprintf("cannot list the pods of node %q: %v", node, err)
	}
	refs := nodeReferenced[a.Resource]
	for _, p := range pods {
		if refs.usedBy(p, a.Name) {
			return true, fmt.Sprintf("pod %q bound to node %q uses it", p.Name, node)
		}
	}
	return false, fmt.Sprintf("no pod bound to node %q uses %s", node, describe(a))
}

// references says where a pod names objects of one kind. Each func
// returns nil (or none) when its source names no such object.
type references struct {
	volume     func(*corev1.VolumeSource) []string
	projection func(*corev1.VolumeProjection) *corev1.LocalObjectReference
	envFrom    func(*corev1.EnvFromSource) *corev1.LocalObjectReference
	env        func(*corev1.EnvVarSource) *corev1.LocalObjectReference
	imagePull  bool // spec.imagePullSecrets names objects of the kind
}

// usedBy reports whether pod names the object called name anywhere: in
// a volume, a projected source, or the env or envFrom of a container
// (init, app or ephemeral).
func (r *references) usedBy(pod *corev1.Pod, name string) bool {
	is := func(r *corev1.LocalObjectReference) bool { return r != nil && r.Name == name }
	if r.imagePull {
		for _, s := range pod.Spec.ImagePullSecrets {
			if s.Name == name {
				return true
			}
		}
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i].VolumeSource
		for _, n := range r.volume(v) {
			if n == name {
				return true
			}
		}
		if v.Projected == nil {
			continue
		}
		for j := range v.Projected.Sources {
			if is(r.projection(&v.Projected.Sources[j])) {
				return true
			}
		}
	}
	return anyContainer(&pod.Spec, func(c *corev1.Container) bool {
		for i := range c.EnvFrom {
			if is(r.envFrom(&c.EnvFrom[i])) {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && is(r.env(e.ValueFrom)) {
				return true
			}
		}
		return false
	})
}

// anyContainer reports whether f holds for any container of spec: init,
// app or ephemeral.
func anyContainer(spec *corev1.PodSpec, f func(*corev1.Container) bool) bool {
	for i := range spec.InitContainers {
		if f(&spec.InitContainers[i]) {
			return true
		}
	}
	for i := range spec.Containers {
		if f(&spec.Containers[i]) {
			return true
		}
	}
	for i := range spec.EphemeralContainers {
		if f((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)) {
			return true
		}
	}
	return false
}

// secretVolume names the Secrets of a volume: a secret volume, and the
// credentials of network and CSI volumes.
func secretVolume(v *corev1.VolumeSource) []string {
	var out []string
	add := func(r *corev1.LocalObjectReference) {
		if r != nil {
			out = append(out, r.Name)
		}
	}
	switch {
	case v.Secret != nil:
		out = append(out, v.Secret.SecretName)
	case v.AzureFile != nil:
		out = append(out, v.AzureFile.SecretName)
	case v.CSI != nil:
		add(v.CSI.NodePublishSecretRef)
	case v.CephFS != nil:
		add(v.CephFS.SecretRef)
	case v.RBD != nil:
		add(v.RBD.SecretRef)
	case v.ISCSI != nil:
		add(v.ISCSI.SecretRef)
	case v.FlexVolume != nil:
		add(v.FlexVolume.SecretRef)
	}
	return out
}
