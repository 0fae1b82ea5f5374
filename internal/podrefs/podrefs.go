// Package podrefs finds the ConfigMaps and Secrets a pod names: in its
// volumes and their projected sources, in the env and envFrom of every
// container (init, app and ephemeral), and, for Secrets, in
// imagePullSecrets. These are the objects a node needs to run the pod,
// and the only ones of their kinds it may learn.
package podrefs

import corev1 "k8s.io/api/core/v1"

// Kind is the kind of a referenced object.
type Kind int

// Kinds a pod references.
const (
	ConfigMap Kind = iota + 1
	Secret
)

// Ref names an object in the pod's namespace.
type Ref struct {
	Kind Kind
	Name string
}

// Of returns the objects pod references, each once, in the order first
// met. Empty names are left out.
func Of(pod *corev1.Pod) []Ref {
	var out []Ref
	seen := map[Ref]bool{}
	add := func(k Kind, name string) {
		r := Ref{Kind: k, Name: name}
		if name != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, s := range pod.Spec.ImagePullSecrets {
		add(Secret, s.Name)
	}
	for i := range pod.Spec.Volumes {
		volume(&pod.Spec.Volumes[i].VolumeSource, add)
	}
	for i := range pod.Spec.InitContainers {
		env(pod.Spec.InitContainers[i].EnvFrom, pod.Spec.InitContainers[i].Env, add)
	}
	for i := range pod.Spec.Containers {
		env(pod.Spec.Containers[i].EnvFrom, pod.Spec.Containers[i].Env, add)
	}
	for i := range pod.Spec.EphemeralContainers {
		c := &pod.Spec.EphemeralContainers[i].EphemeralContainerCommon
		env(c.EnvFrom, c.Env, add)
	}
	return out
}

func volume(v *corev1.VolumeSource, add func(Kind, string)) {
	switch {
	case v.ConfigMap != nil:
		add(ConfigMap, v.ConfigMap.Name)
	case v.Secret != nil:
		add(Secret, v.Secret.SecretName)
	case v.Projected != nil:
		for _, src := range v.Projected.Sources {
			if src.ConfigMap != nil {
				add(ConfigMap, src.ConfigMap.Name)
			}
			if src.Secret != nil {
				add(Secret, src.Secret.Name)
			}
		}
	}
	// Volume plugins that name a Secret for their credentials.
	switch {
	case v.CephFS != nil && v.CephFS.SecretRef != nil:
		add(Secret, v.CephFS.SecretRef.Name)
	case v.RBD != nil && v.RBD.SecretRef != nil:
		add(Secret, v.RBD.SecretRef.Name)
	case v.ISCSI != nil && v.ISCSI.SecretRef != nil:
		add(Secret, v.ISCSI.SecretRef.Name)
	case v.FlexVolume != nil && v.FlexVolume.SecretRef != nil:
		add(Secret, v.FlexVolume.SecretRef.Name)
	case v.CSI != nil && v.CSI.NodePublishSecretRef != nil:
		add(Secret, v.CSI.NodePublishSecretRef.Name)
	case v.AzureFile != nil:
		add(Secret, v.AzureFile.SecretName)
	case v.ScaleIO != nil && v.ScaleIO.SecretRef != nil:
		add(Secret, v.ScaleIO.SecretRef.Name)
	case v.StorageOS != nil && v.StorageOS.SecretRef != nil:
		add(Secret, v.StorageOS.SecretRef.Name)
	}
}

func env(from []corev1.EnvFromSource, vars []corev1.EnvVar, add func(Kind, string)) {
	for _, f := range from {
		if f.ConfigMapRef != nil {
			add(ConfigMap, f.ConfigMapRef.Name)
		}
		if f.SecretRef != nil {
			add(Secret, f.SecretRef.Name)
		}
	}
	for _, v := range vars {
		if v.ValueFrom == nil {
			continue
		}
		if v.ValueFrom.ConfigMapKeyRef != nil {
			add(ConfigMap, v.ValueFrom.ConfigMapKeyRef.Name)
		}
		if v.ValueFrom.SecretKeyRef != nil {
			add(Secret, v.ValueFrom.SecretKeyRef.Name)
		}
	}
}
