package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/store/storetest"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The pod informer of a factory set up by watchPodsInProcess lists
// through the client but watches in process: with a client that lists
// once and cannot watch, it still sees pods created after it synced.
func TestWatchPodsInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	api, err := apiserver.New(apiserver.Config{Store: storetest.New(t), Logger: slog.New(slog.DiscardHandler), ServiceCIDR: "10.43.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.EnsureNamespaces(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := api.ServeLoopback(ctx)
	// The client serves one list and no watch: pods created later reach
	// the informer only through a watch in process.
	var lists atomic.Int32
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Query().Get("watch") != "" {
				return nil, errors.New("this client does not watch")
			}
			if lists.Add(1) > 1 {
				return nil, errors.New("this client lists once")
			}
			return rt.RoundTrip(r)
		})
	})
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	defer factory.Shutdown() // after cancel, which ends the informers
	defer cancel()
	watchPodsInProcess(ctx, factory, api)
	seen := make(chan string, 10)
	informer := factory.Core().V1().Pods().Informer()
	informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) { seen <- obj.(*corev1.Pod).Name }})
	factory.Start(ctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, 10*time.Second)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced) {
		t.Fatal("the pod informer did not sync")
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := kubernetes.NewForConfigOrDie(api.LoopbackConfig(apiserver.LoopbackUser)).CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-seen:
		if name != "later" {
			t.Errorf("informer saw %q, want later", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the informer did not see a pod created after it synced")
	}
}
