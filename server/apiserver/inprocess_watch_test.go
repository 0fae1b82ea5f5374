package apiserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik-dev/minik/server/auth"
)

// eventSummary is what a test compares of a watch event.
func eventSummary(t *testing.T, ev watch.Event) string {
	t.Helper()
	switch o := ev.Object.(type) {
	case *corev1.Pod:
		if o.Kind != "" || o.APIVersion != "" {
			t.Errorf("%s event object has apiVersion %q kind %q, want none", ev.Type, o.APIVersion, o.Kind)
		}
		return fmt.Sprintf("%s %s rv=%s app=%s initial-end=%s", ev.Type, o.Name, o.ResourceVersion, o.Labels["app"], o.Annotations[metav1.InitialEventsAnnotationKey])
	case *metav1.Status:
		return fmt.Sprintf("%s status %d %s", ev.Type, o.Code, o.Reason)
	}
	return fmt.Sprintf("%s %T", ev.Type, ev.Object)
}

func collect(t *testing.T, w watch.Interface, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended after %v", out)
			}
			out = append(out, eventSummary(t, ev))
		case <-time.After(10 * time.Second):
			t.Fatalf("%d events, want %d: %v", len(out), n, out)
		}
	}
	return out
}

// A watch of objects gives the same events as a watch over HTTP with the
// same options, objects without apiVersion and kind as client-go decodes
// them.
func TestWatchObjectsAsHTTPWatch(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	pods := ts.client.CoreV1().Pods("default")
	create := func(name, app string) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("before", "web")
	cur, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := cur.ResourceVersion
	for _, tc := range []struct {
		name string
		opts metav1.ListOptions
		n    int
	}{
		{"from a revision", metav1.ListOptions{ResourceVersion: rv}, 4},
		{"a label selection, left by an update", metav1.ListOptions{ResourceVersion: rv, LabelSelector: "app=web"}, 2},
		{"initial events", metav1.ListOptions{SendInitialEvents: new(true), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowWatchBookmarks: true}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			overHTTP, err := pods.Watch(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer overHTTP.Stop()
			objects, err := ts.WatchObjects(ctx, LoopbackUser, "pods", "default", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer objects.Stop()
			if tc.name == "from a revision" || tc.name == "a label selection, left by an update" {
				name := fmt.Sprintf("p-%d", len(tc.name))
				create(name, "web")
				p, err := pods.Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				p.Labels["app"] = "db"
				if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				create(name+"-db", "db")
				if err := pods.Delete(ctx, name+"-db", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
					t.Fatal(err)
				}
			}
			want := collect(t, overHTTP, tc.n)
			got := collect(t, objects, tc.n)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events over HTTP (-) and as objects (+):\n%s", diff)
			}
		})
	}
}

// A refused watch returns the API's error; Stop ends a watch.
func TestWatchObjectsRefusedAndStopped(t *testing.T) {
	ts := newTestServer(t)
	withNodeAuthorizer(ts)
	ctx := context.Background()
	_, err := ts.WatchObjects(ctx, auth.User{Name: "nobody", Groups: []string{auth.GroupAuthenticated}}, "pods", "", metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("watch by a user without rights = %v, want Forbidden", err)
	}
	_, err = ts.WatchObjects(ctx, LoopbackUser, "pods", "", metav1.ListOptions{ResourceVersion: "x"})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("watch from resourceVersion x = %v, want BadRequest", err)
	}
	w, err := ts.WatchObjects(ctx, LoopbackUser, "pods", "", metav1.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	select {
	case _, ok := <-w.ResultChan():
		for ok {
			_, ok = <-w.ResultChan()
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end after Stop")
	}
}
