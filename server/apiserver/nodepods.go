package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/server/registry"
)

// NodePods returns the pods of namespace bound to node, for the node
// authorizer (auth.NodePodLister): a node may read the Secrets and
// ConfigMaps these pods use. Pods bound elsewhere are skipped before
// they are decoded. The pods are shared and must not be modified. Safe
// for concurrent use.
func (s *Server) NodePods(ctx context.Context, node, namespace string) ([]*corev1.Pod, error) {
	res, _ := registry.Lookup("pods")
	kvs, _, err := s.store.List(ctx, storagePrefix(res, namespace), 0)
	if err != nil {
		return nil, err
	}
	var pods []*corev1.Pod
	for _, kv := range kvs {
		if bound, ok := registry.StoredPodNodeName(kv.Value); ok && bound != node {
			continue
		}
		obj, err := s.decodeShared(res, kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, fmt.Errorf("stored pod %s decoded as %T", kv.Key, obj)
		}
		if pod.Spec.NodeName == node {
			pods = append(pods, pod)
		}
	}
	return pods, nil
}
