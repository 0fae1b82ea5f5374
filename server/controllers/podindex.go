package controllers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// byController indexes pods by the UID of their controller, and pods
// without one under orphanKey(namespace): a controller's sync then reads
// its own pods and the orphans it might adopt, not every pod of the
// namespace.
const byController = "controller-uid"

func orphanKey(namespace string) string { return "orphan/" + namespace }

func controllerKey(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return []string{orphanKey(pod.Namespace)}, nil
}

// indexByController adds the byController index to the pod informer,
// once however many controllers share it. It must run before the
// informer starts.
func indexByController(pods coreinformers.PodInformer) error {
	inf := pods.Informer()
	if _, ok := inf.GetIndexer().GetIndexers()[byController]; ok {
		return nil
	}
	return inf.AddIndexers(cache.Indexers{byController: controllerKey})
}

// podsToClaim are the pods of namespace that a controller with uid owns or
// could adopt: its own and the orphans.
func podsToClaim(indexer cache.Indexer, namespace string, uid types.UID) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	for _, key := range []string{string(uid), orphanKey(namespace)} {
		objs, err := indexer.ByIndex(byController, key)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok && p.Namespace == namespace {
				out = append(out, p)
			}
		}
	}
	return out, nil
}
