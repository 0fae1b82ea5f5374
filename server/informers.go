package server

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/server/apiserver"
)

// watchPodsInProcess makes factory's pod informer, the busiest one, watch
// through api.WatchObjects: the same watch handling as over the loopback,
// but with the API's decoded pods handed over as copies instead of encoded
// and decoded again. Its lists still go through the loopback client. It
// refuses to watch once fence ends, as the fenced loopback refuses
// requests. Call it before anything asks factory for the pod informer.
func watchPodsInProcess(fence context.Context, factory informers.SharedInformerFactory, api *apiserver.Server) {
	factory.InformerFor(&corev1.Pod{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				if err := fence.Err(); err != nil {
					return nil, fmt.Errorf("watch of pods refused: this server no longer leads: %w", err)
				}
				return api.WatchObjects(ctx, apiserver.LoopbackUser, "pods", metav1.NamespaceAll, opts)
			},
		}
		return cache.NewSharedIndexInformer(lw, &corev1.Pod{}, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	})
}
