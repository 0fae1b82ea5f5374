package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// Conflicts requeue a key without growing its backoff: 30 conflicts in a
// row would wait 10 ms × 2^30 under the failure backoff, and take moments
// here. Other errors do grow it.
func TestLoopConflictsDoNotBackOff(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "replicasets"}, "web", errors.New("changed"))
	var syncs atomic.Int32
	done := make(chan struct{})
	l := newLoop("test", slog.New(slog.DiscardHandler), func(ctx context.Context, key string) error {
		switch n := syncs.Add(1); {
		case n <= 30:
			return fmt.Errorf("status: %w", conflict)
		case n == 31:
			close(done)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.run(ctx, 1)
	l.add("default/web")
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%d syncs after a minute, want 31", syncs.Load())
	}
	if n := l.queue.NumRequeues("default/web"); n != 0 {
		t.Errorf("requeues after conflicts = %d, want 0", n)
	}

	// Any other error counts as a failure.
	failing := newLoop("test", slog.New(slog.DiscardHandler), func(context.Context, string) error { return errors.New("boom") })
	go failing.run(ctx, 1)
	failing.add("default/web")
	for deadline := time.Now().Add(time.Minute); failing.queue.NumRequeues("default/web") < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a failing sync was not requeued with backoff")
		}
	}
}

// cached reads the loop's own kind from its informer's store; a missing
// key is done and forgotten, and a malformed one is an error.
func TestLoopCached(t *testing.T) {
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &appsv1.Deployment{}, 0, cache.Indexers{})
	l := newLoop("test", slog.New(slog.DiscardHandler), nil)
	if err := l.watch(l.own(inf)); err != nil {
		t.Fatal(err)
	}
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	if err := inf.GetStore().Add(web); err != nil {
		t.Fatal(err)
	}
	var forgotten []string
	forget := func(key string) { forgotten = append(forgotten, key) }

	got, found, err := cached[*appsv1.Deployment](l, "default/web", forget)
	if got != web || !found || err != nil || forgotten != nil {
		t.Errorf("cached(default/web) = %v, %v, %v (forgot %q); want the Deployment, true, nil", got, found, err, forgotten)
	}
	got, found, err = cached[*appsv1.Deployment](l, "default/gone", forget)
	if got != nil || found || err != nil || len(forgotten) != 1 || forgotten[0] != "default/gone" {
		t.Errorf("cached(default/gone) = %v, %v, %v (forgot %q); want nil, false, nil and default/gone forgotten", got, found, err, forgotten)
	}
	if _, found, err = cached[*appsv1.StatefulSet](l, "default/web"); found || err == nil {
		t.Errorf("cached as another kind = %v, %v; want not found and an error", found, err)
	}
}

func TestControllerKeyOfAndAddSelecting(t *testing.T) {
	ctrl := true
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: map[string]string{"app": "web"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", Controller: &ctrl}}}}
	if key, ok := controllerKeyOf(pod, rsKind); key != "ns/web-1" || !ok {
		t.Errorf("controllerKeyOf(pod, ReplicaSet) = %q, %v; want ns/web-1, true", key, ok)
	}
	if key, ok := controllerKeyOf(pod, jobKind); ok {
		t.Errorf("controllerKeyOf(pod, Job) = %q, true; want false", key)
	}

	l := newLoop("test", slog.New(slog.DiscardHandler), nil)
	defer l.queue.ShutDown()
	sets := []*appsv1.ReplicaSet{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "match"}, Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other"}, Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "empty"}, Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "none"}},
	}
	addSelecting(l, sets, func(rs *appsv1.ReplicaSet) *metav1.LabelSelector { return rs.Spec.Selector }, pod.Labels)
	if n := l.queue.Len(); n != 1 {
		t.Fatalf("%d keys queued, want 1", n)
	}
	if key, _ := l.queue.Get(); key != "ns/match" {
		t.Errorf("queued %q, want ns/match", key)
	}
}
