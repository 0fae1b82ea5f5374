package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik-dev/minik/server/record"
)

func startReplication(e *env) *ReplicaManager {
	e.t.Helper()
	rec := record.New(e.client, ComponentControllerManager, e.lg, record.Options{})
	m, err := NewReplicationManager(e.client, e.factory.Core().V1().ReplicationControllers(), e.factory.Core().V1().Pods(), e.lg, ReplicationOptions{Recorder: rec})
	if err != nil {
		e.t.Fatalf("NewReplicationManager: %v", err)
	}
	e.run(func(ctx context.Context) error { return m.Run(ctx, 2) }, rec.Run)
	return m
}

func (e *env) createRC(name string, replicas int32, selector, tmplLabels map[string]string) *corev1.ReplicationController {
	e.t.Helper()
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &replicas,
			Selector: selector,
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: tmplLabels},
				Spec:       testPodSpec(),
			},
		},
	}
	out, err := e.client.CoreV1().ReplicationControllers("default").Create(e.ctx, rc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create rc %q: %v", name, err)
	}
	return out
}

func (e *env) scaleRC(name string, replicas int32) {
	e.t.Helper()
	rcs := e.client.CoreV1().ReplicationControllers("default")
	e.eventually("scale "+name, func() error {
		rc, err := rcs.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		rc.Spec.Replicas = &replicas
		_, err = rcs.Update(e.ctx, rc, metav1.UpdateOptions{})
		return err
	})
}

// activePodNames returns the names of the pods in default that are not
// being deleted, sorted.
func (e *env) activePodNames() []string {
	e.t.Helper()
	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	var names []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

func (e *env) waitRCStatus(name string, want corev1.ReplicationControllerStatus) {
	e.t.Helper()
	e.eventually("status of "+name, func() error {
		rc, err := e.client.CoreV1().ReplicationControllers("default").Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		got := rc.Status
		got.Conditions = nil
		if want.ObservedGeneration == 0 {
			want.ObservedGeneration = rc.Generation
		}
		if !apiequality.Semantic.DeepEqual(got, want) {
			return fmt.Errorf("status = %+v, want %+v", got, want)
		}
		return nil
	})
}

func TestReplicationCreatesPods(t *testing.T) {
	e := newEnv(t)
	startReplication(e)
	sel := map[string]string{"app": "web"}
	rc := e.createRC("web", 3, sel, sel)
	e.waitRCStatus("web", corev1.ReplicationControllerStatus{Replicas: 3, FullyLabeledReplicas: 3})

	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 {
		t.Fatalf("%d pods, want 3", len(list.Items))
	}
	for _, p := range list.Items {
		if !strings.HasPrefix(p.Name, "web-") || p.GenerateName != "web-" {
			t.Errorf("pod name %q, generateName %q; want generateName web-", p.Name, p.GenerateName)
		}
		ref := metav1.GetControllerOf(&p)
		want := metav1.OwnerReference{APIVersion: "v1", Kind: "ReplicationController", Name: "web", UID: rc.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
		if ref == nil {
			t.Fatalf("pod %q has no controller", p.Name)
		}
		if diff := cmp.Diff(want, *ref); diff != "" {
			t.Errorf("pod %q controller ref (-want +got):\n%s", p.Name, diff)
		}
	}
	events := e.waitEvents(t, "web", "SuccessfulCreate", 3)
	if events == 0 {
		t.Error("no SuccessfulCreate events")
	}
}

// waitEvents returns the total count of events with reason about name
// once it reaches at least want.
func (e *env) waitEvents(t *testing.T, name, reason string, want int32) int32 {
	t.Helper()
	var total int32
	e.eventually(reason+" events", func() error {
		list, err := e.client.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		total = 0
		for _, ev := range list.Items {
			if ev.InvolvedObject.Name == name && ev.Reason == reason {
				total += ev.Count
			}
		}
		if total < want {
			return fmt.Errorf("%d %s events, want %d", total, reason, want)
		}
		return nil
	})
	return total
}

func TestReplicationNeverOverCreates(t *testing.T) {
	e := newEnv(t)
	e.useLaggingInformers(200 * time.Millisecond)
	m := startReplication(e)
	w, err := e.client.CoreV1().Pods("default").Watch(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	sel := map[string]string{"app": "burst"}
	e.createRC("burst", 5, sel, sel)
	// A burst of resyncs while pods are being created and the informer
	// lags behind the creates.
	stop := time.After(2500 * time.Millisecond)
	added := map[string]bool{}
	for done := false; !done; {
		m.loop.add("default/burst")
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Added {
				added[ev.Object.(*corev1.Pod).Name] = true
			}
		case <-stop:
			done = true
		case <-time.After(time.Millisecond):
		}
	}
	if len(added) != 5 {
		t.Errorf("%d pods created, want 5", len(added))
	}
	if got := e.activePodNames(); len(got) != 5 {
		t.Errorf("%d pods exist, want 5", len(got))
	}
}

func TestReplicationScaleDownPreference(t *testing.T) {
	e := newEnv(t)
	startReplication(e)
	sel := map[string]string{"app": "web"}
	onNode := func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }
	e.createPod("a-unscheduled", sel)
	e.createPod("b-pending", sel, onNode)
	e.createPod("c-notready", sel, onNode)
	e.createPod("d-restarts", sel, onNode)
	e.createPod("e-ready", sel, onNode)
	e.createPod("f-ready", sel, onNode)
	e.setPodStatus("b-pending", corev1.PodPending, "", false, 0)
	e.setPodStatus("c-notready", corev1.PodRunning, "10.42.0.3", false, 0)
	e.setPodStatus("d-restarts", corev1.PodRunning, "10.42.0.4", true, 5)
	e.setPodStatus("e-ready", corev1.PodRunning, "10.42.0.5", true, 0)
	e.setPodStatus("f-ready", corev1.PodRunning, "10.42.0.6", true, 0)

	e.createRC("web", 6, sel, sel)
	e.waitRCStatus("web", corev1.ReplicationControllerStatus{Replicas: 6, FullyLabeledReplicas: 6, ReadyReplicas: 3, AvailableReplicas: 3})
	all := []string{"a-unscheduled", "b-pending", "c-notready", "d-restarts", "e-ready", "f-ready"}
	if got := e.activePodNames(); !slices.Equal(got, all) {
		t.Fatalf("pods after adoption = %v, want %v (no new pods)", got, all)
	}
	for n := 5; n >= 2; n-- {
		e.scaleRC("web", int32(n))
		want := all[6-n:]
		e.eventually(fmt.Sprintf("scale to %d", n), func() error {
			if got := e.activePodNames(); !slices.Equal(got, want) {
				return fmt.Errorf("active pods = %v, want %v", got, want)
			}
			return nil
		})
	}
	e.waitRCStatus("web", corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2})
	e.waitEvents(t, "web", "SuccessfulDelete", 4)
}

func TestComparePodsForDeletion(t *testing.T) {
	old, newer := metav1.NewTime(time.Unix(1000, 0)), metav1.NewTime(time.Unix(2000, 0))
	pod := func(name, node string, phase corev1.PodPhase, ready bool, restarts int32, created metav1.Time) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: created}}
		p.Spec.NodeName = node
		p.Status.Phase = phase
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: restarts}}
		return p
	}
	// In deletion order.
	pods := []*corev1.Pod{
		pod("unscheduled", "", corev1.PodPending, false, 0, old),
		pod("pending", "n", corev1.PodPending, false, 0, old),
		pod("unknown", "n", corev1.PodUnknown, false, 0, old),
		pod("notready", "n", corev1.PodRunning, false, 0, old),
		pod("restarts", "n", corev1.PodRunning, true, 3, old),
		pod("newer", "n", corev1.PodRunning, true, 0, newer),
		pod("older", "n", corev1.PodRunning, true, 0, old),
	}
	shuffled := []*corev1.Pod{pods[6], pods[3], pods[0], pods[5], pods[1], pods[4], pods[2]}
	got := podsToDelete(shuffled, len(pods))
	for i := range pods {
		if got[i].Name != pods[i].Name {
			t.Errorf("podsToDelete()[%d] = %q, want %q", i, got[i].Name, pods[i].Name)
		}
	}
}

func TestReplicationAdoptsAndReleases(t *testing.T) {
	e := newEnv(t)
	startReplication(e)
	sel := map[string]string{"app": "web"}
	e.createPod("orphan", sel)
	rc := e.createRC("web", 2, sel, map[string]string{"app": "web", "tier": "front"})
	e.waitRCStatus("web", corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 1})
	pods := e.client.CoreV1().Pods("default")
	orphan, err := pods.Get(e.ctx, "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(orphan); ref == nil || ref.UID != rc.UID {
		t.Fatalf("orphan controller = %+v, want rc %s", ref, rc.UID)
	}

	orphan.Labels = map[string]string{"app": "other"}
	if _, err := pods.Update(e.ctx, orphan, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("release", func() error {
		p, err := pods.Get(e.ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(p.OwnerReferences) != 0 {
			return fmt.Errorf("ownerReferences = %+v, want none", p.OwnerReferences)
		}
		return nil
	})
	e.waitRCStatus("web", corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2})
	if got := e.activePodNames(); len(got) != 3 {
		t.Errorf("pods = %v, want the released one and 2 of the rc", got)
	}
}
