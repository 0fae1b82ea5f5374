package controllers

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// rsKind is the group/version/kind of a ReplicaSet, as owner references
// name it.
var rsKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// replicated is what the replica manager reads of a ReplicationController
// or a ReplicaSet: both keep a number of pods made from a template and
// differ only in the form of their selector and in their API group. The
// status is in the ReplicationController form, which has the same fields.
type replicated struct {
	obj      runtime.Object // the RC or ReplicaSet itself, for events
	meta     *metav1.ObjectMeta
	selector labels.Selector // labels.Nothing() when empty or invalid
	replicas int
	minReady int32
	template *corev1.PodTemplateSpec
	status   corev1.ReplicationControllerStatus
}

// replicaKind adapts one kept kind to the replica manager.
type replicaKind struct {
	gvk      schema.GroupVersionKind
	informer cache.SharedIndexInformer
	// from reads an object of the kind from the informer's cache; list
	// reads all of a namespace's.
	from func(obj runtime.Object) *replicated
	list func(namespace string) ([]*replicated, error)
	// fetch reads the object from the API, past the cache.
	fetch func(ctx context.Context, namespace, name string) (metav1.Object, error)
	// writeStatus replaces r's status with st.
	writeStatus func(ctx context.Context, r *replicated, st corev1.ReplicationControllerStatus) error
}

// replicationControllerKind serves ReplicationControllers.
func replicationControllerKind(client kubernetes.Interface, inf coreinformers.ReplicationControllerInformer) *replicaKind {
	lister := inf.Lister()
	return &replicaKind{
		gvk:      rcKind,
		informer: inf.Informer(),
		from:     func(obj runtime.Object) *replicated { return fromRC(obj.(*corev1.ReplicationController)) },
		list: func(ns string) ([]*replicated, error) {
			rcs, err := lister.ReplicationControllers(ns).List(labels.Everything())
			return convertAll(rcs, fromRC), err
		},
		fetch: func(ctx context.Context, ns, name string) (metav1.Object, error) {
			return client.CoreV1().ReplicationControllers(ns).Get(ctx, name, metav1.GetOptions{})
		},
		writeStatus: func(ctx context.Context, r *replicated, st corev1.ReplicationControllerStatus) error {
			out := r.obj.(*corev1.ReplicationController).DeepCopy()
			out.Status = st
			_, err := client.CoreV1().ReplicationControllers(out.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
			return err
		},
	}
}

func fromRC(rc *corev1.ReplicationController) *replicated {
	sel := labels.Nothing()
	if len(rc.Spec.Selector) > 0 {
		sel = labels.SelectorFromSet(rc.Spec.Selector)
	}
	return &replicated{
		obj: rc, meta: &rc.ObjectMeta, selector: sel, replicas: replicasOf(rc.Spec.Replicas),
		minReady: rc.Spec.MinReadySeconds, template: rc.Spec.Template, status: rc.Status,
	}
}

// replicaSetKind serves apps/v1 ReplicaSets.
func replicaSetKind(client kubernetes.Interface, inf appsinformers.ReplicaSetInformer) *replicaKind {
	lister := inf.Lister()
	return &replicaKind{
		gvk:      rsKind,
		informer: inf.Informer(),
		from:     func(obj runtime.Object) *replicated { return fromRS(obj.(*appsv1.ReplicaSet)) },
		list: func(ns string) ([]*replicated, error) {
			rss, err := lister.ReplicaSets(ns).List(labels.Everything())
			return convertAll(rss, fromRS), err
		},
		fetch: func(ctx context.Context, ns, name string) (metav1.Object, error) {
			return client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		},
		writeStatus: func(ctx context.Context, r *replicated, st corev1.ReplicationControllerStatus) error {
			out := r.obj.(*appsv1.ReplicaSet).DeepCopy()
			out.Status = toRSStatus(st)
			_, err := client.AppsV1().ReplicaSets(out.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
			return err
		},
	}
}

func fromRS(rs *appsv1.ReplicaSet) *replicated {
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || rs.Spec.Selector == nil || sel.Empty() {
		sel = labels.Nothing()
	}
	return &replicated{
		obj: rs, meta: &rs.ObjectMeta, selector: sel, replicas: replicasOf(rs.Spec.Replicas),
		minReady: rs.Spec.MinReadySeconds, template: &rs.Spec.Template, status: fromRSStatus(rs.Status),
	}
}

func fromRSStatus(s appsv1.ReplicaSetStatus) corev1.ReplicationControllerStatus {
	out := corev1.ReplicationControllerStatus{
		Replicas: s.Replicas, FullyLabeledReplicas: s.FullyLabeledReplicas, ReadyReplicas: s.ReadyReplicas,
		AvailableReplicas: s.AvailableReplicas, ObservedGeneration: s.ObservedGeneration,
	}
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, corev1.ReplicationControllerCondition{
			Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return out
}

func toRSStatus(s corev1.ReplicationControllerStatus) appsv1.ReplicaSetStatus {
	out := appsv1.ReplicaSetStatus{
		Replicas: s.Replicas, FullyLabeledReplicas: s.FullyLabeledReplicas, ReadyReplicas: s.ReadyReplicas,
		AvailableReplicas: s.AvailableReplicas, ObservedGeneration: s.ObservedGeneration,
	}
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return out
}

func convertAll[T any](in []T, f func(T) *replicated) []*replicated {
	out := make([]*replicated, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// replicasOf is a replica count, defaulting to 1 as the API does.
func replicasOf(n *int32) int {
	if n == nil {
		return 1
	}
	return int(*n)
}
