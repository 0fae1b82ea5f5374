package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
)

// startStatefulSets runs the StatefulSet controller.
func startStatefulSets(e *env) { startStatefulSetsWith(e, StatefulSetOptions{}) }

func startStatefulSetsWith(e *env, opts StatefulSetOptions) {
	e.t.Helper()
	apps := e.factory.Apps().V1()
	c, err := NewStatefulSetController(e.client, apps.StatefulSets(), e.factory.Core().V1().Pods(), apps.ControllerRevisions(),
		e.factory.Core().V1().PersistentVolumeClaims(), e.lg, opts)
	if err != nil {
		e.t.Fatalf("NewStatefulSetController: %v", err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })
}

func (e *env) createStatefulSet(name string, replicas int32, mutate ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	e.t.Helper()
	lbls := map[string]string{"app": name}
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &replicas,
			ServiceName: name + "-svc",
			Selector:    &metav1.LabelSelector{MatchLabels: lbls},
			Template:    corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: testPodSpec()},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	out, err := e.client.AppsV1().StatefulSets("default").Create(e.ctx, s, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create statefulset %q: %v", name, err)
	}
	return out
}

// updateStatefulSet applies change to the current StatefulSet.
func (e *env) updateStatefulSet(name string, change func(*appsv1.StatefulSet)) {
	e.t.Helper()
	sets := e.client.AppsV1().StatefulSets("default")
	e.eventually("update "+name, func() error {
		s, err := sets.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(s)
		_, err = sets.Update(e.ctx, s, metav1.UpdateOptions{})
		return err
	})
}

// podNames lists the names of the pods in default, sorted.
func (e *env) podNames() []string {
	e.t.Helper()
	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// waitPods waits until the pods in default are exactly names.
func (e *env) waitPods(names ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("pods %v", names), func() error {
		if got := e.podNames(); !slices.Equal(got, names) {
			return fmt.Errorf("pods %v", got)
		}
		return nil
	})
}

// readyPod marks pod name Running and Ready, as a kubelet would.
func (e *env) readyPod(name string) {
	e.t.Helper()
	e.setPodStatus(name, corev1.PodRunning, "10.42.0.10", true, 0)
}

// kubelet marks every pod Running and Ready as soon as it appears, until
// the test ends.
func (e *env) kubelet() {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	e.t.Cleanup(func() { cancel(); <-done })
	pods := e.client.CoreV1().Pods("default")
	go func() {
		defer close(done)
		w, err := pods.Watch(ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || p.DeletionTimestamp != nil || (p.Status.Phase != "" && p.Status.Phase != corev1.PodPending) {
				continue
			}
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
			if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				e.t.Logf("kubelet: %v", err)
			}
		}
	}()
}

// deletions records the order in which pods in default are deleted.
type deletions struct {
	mu    sync.Mutex
	names []string
}

func (e *env) recordDeletions() *deletions {
	w, err := e.client.CoreV1().Pods("default").Watch(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("watch pods: %v", err)
	}
	d := &deletions{}
	e.t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Deleted {
				d.mu.Lock()
				d.names = append(d.names, p.Name)
				d.mu.Unlock()
			}
		}
	}()
	return d
}

// wait waits until the deletions seen are want, in order (sort: in any
// order).
func (d *deletions) wait(e *env, sort bool, want ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("deletions %v", want), func() error {
		got := d.get()
		if sort {
			slices.Sort(got)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("deleted %v", got)
		}
		return nil
	})
}

func (d *deletions) get() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.names)
}

func (e *env) statefulSet(name string) *appsv1.StatefulSet {
	e.t.Helper()
	s, err := e.client.AppsV1().StatefulSets("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get statefulset %q: %v", name, err)
	}
	return s
}

func (e *env) pod(name string) *corev1.Pod {
	e.t.Helper()
	p, err := e.client.CoreV1().Pods("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get pod %q: %v", name, err)
	}
	return p
}

// waitStatus waits until the set's status passes check.
func (e *env) waitSetStatus(name string, check func(appsv1.StatefulSetStatus) error) appsv1.StatefulSetStatus {
	e.t.Helper()
	var st appsv1.StatefulSetStatus
	e.eventually(name+" status", func() error {
		s := e.statefulSet(name)
		st = s.Status
		if st.ObservedGeneration != s.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", st.ObservedGeneration, s.Generation)
		}
		return check(st)
	})
	return st
}

func TestStatefulSetOrderedCreation(t *testing.T) {
	e := newEnv(t)
	startStatefulSets(e)
	set := e.createStatefulSet("web", 3)

	e.waitPods("web-0")
	p := e.pod("web-0")
	if p.Spec.Hostname != "web-0" || p.Spec.Subdomain != "web-svc" {
		t.Errorf("hostname %q, subdomain %q; want web-0, web-svc", p.Spec.Hostname, p.Spec.Subdomain)
	}
	st := e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.Replicas != 1 || st.UpdateRevision == "" {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	wantLabels := map[string]string{
		"app": "web", appsv1.StatefulSetPodNameLabel: "web-0", appsv1.PodIndexLabel: "0",
		appsv1.ControllerRevisionHashLabelKey: st.UpdateRevision,
	}
	if diff := cmp.Diff(wantLabels, p.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != set.UID || ref.Kind != "StatefulSet" {
		t.Errorf("controller of web-0 = %+v, want the StatefulSet", ref)
	}

	e.readyPod("web-0")
	e.waitPods("web-0", "web-1")
	// web-1 is not ready: web-2 must wait for it.
	e.setPodStatus("web-1", corev1.PodRunning, "10.42.0.11", false, 0)
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.Replicas != 2 || st.ReadyReplicas != 1 {
			return fmt.Errorf("replicas %d ready %d, want 2 and 1", st.Replicas, st.ReadyReplicas)
		}
		return nil
	})
	if got := e.podNames(); len(got) != 2 {
		t.Fatalf("pods %v while web-1 is not ready, want web-0 and web-1 only", got)
	}
	e.readyPod("web-1")
	e.waitPods("web-0", "web-1", "web-2")
	e.readyPod("web-2")
	st = e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.Replicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 3 || st.CurrentReplicas != 3 || st.UpdatedReplicas != 3 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if st.CurrentRevision != st.UpdateRevision {
		t.Errorf("currentRevision %q, updateRevision %q; want equal", st.CurrentRevision, st.UpdateRevision)
	}
}

func TestStatefulSetParallelAndOrdinals(t *testing.T) {
	e := newEnv(t)
	startStatefulSets(e)
	e.createStatefulSet("db", 3, func(s *appsv1.StatefulSet) {
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
	})
	// No pod is ready, yet all three are made at once.
	e.waitPods("db-5", "db-6", "db-7")
	if got := e.pod("db-6").Labels[appsv1.PodIndexLabel]; got != "6" {
		t.Errorf("pod-index of db-6 = %q, want 6", got)
	}
	e.updateStatefulSet("db", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr[int32](1) })
	e.waitPods("db-5")
}

func TestStatefulSetScaleDownInReverse(t *testing.T) {
	e := newEnv(t)
	e.kubelet()
	startStatefulSets(e)
	e.createStatefulSet("web", 3)
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 3 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	d := e.recordDeletions()
	e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr[int32](0) })
	e.waitPods()
	d.wait(e, false, "web-2", "web-1", "web-0")
}

func TestStatefulSetScaleDownHaltsOnUnhealthy(t *testing.T) {
	e := newEnv(t)
	startStatefulSets(e)
	e.createStatefulSet("web", 2)
	e.waitPods("web-0")
	e.readyPod("web-0")
	e.waitPods("web-0", "web-1")
	e.readyPod("web-1")
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 2 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	// web-0 turns unready: scaling down must wait for it.
	e.setPodStatus("web-0", corev1.PodRunning, "10.42.0.10", false, 0)
	e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr[int32](1) })
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 1 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	if got := e.podNames(); len(got) != 2 {
		t.Fatalf("pods %v while web-0 is unready, want both kept", got)
	}
	e.readyPod("web-0")
	e.waitPods("web-0")
}

func TestStatefulSetRollingUpdate(t *testing.T) {
	e := newEnv(t)
	e.kubelet()
	startStatefulSets(e)
	e.createStatefulSet("web", 3)
	first := e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 3 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	d := e.recordDeletions()
	e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	st := e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.UpdateRevision == first.UpdateRevision || st.CurrentRevision != st.UpdateRevision || st.UpdatedReplicas != 3 || st.ReadyReplicas != 3 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	d.wait(e, false, "web-2", "web-1", "web-0")
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		p := e.pod(name)
		if p.Spec.Containers[0].Image != "busybox:2" || podRevision(p) != st.UpdateRevision {
			t.Errorf("%s runs %s at %s, want busybox:2 at %s", name, p.Spec.Containers[0].Image, podRevision(p), st.UpdateRevision)
		}
	}
	revs := e.revisionNumbers()
	if diff := cmp.Diff(map[string]int64{first.UpdateRevision: 1, st.UpdateRevision: 2}, revs); diff != "" {
		t.Errorf("revisions (-want +got):\n%s", diff)
	}

	// Rolling back as `kubectl rollout undo` does, by applying the first
	// revision's data as a strategic merge patch, reuses that revision as
	// number 3.
	cr, err := e.client.AppsV1().ControllerRevisions("default").Get(e.ctx, first.UpdateRevision, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.AppsV1().StatefulSets("default").Patch(e.ctx, "web", types.StrategicMergePatchType, cr.Data.Raw, metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch with revision 1: %v", err)
	}
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.UpdateRevision != first.UpdateRevision || st.CurrentRevision != st.UpdateRevision || st.UpdatedReplicas != 3 || st.ReadyReplicas != 3 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if diff := cmp.Diff(map[string]int64{first.UpdateRevision: 3, st.UpdateRevision: 2}, e.revisionNumbers()); diff != "" {
		t.Errorf("revisions after rollback (-want +got):\n%s", diff)
	}
}

// revisionNumbers returns the ControllerRevisions in default by name.
func (e *env) revisionNumbers() map[string]int64 {
	e.t.Helper()
	list, err := e.client.AppsV1().ControllerRevisions("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list controllerrevisions: %v", err)
	}
	out := map[string]int64{}
	for _, cr := range list.Items {
		out[cr.Name] = cr.Revision
	}
	return out
}

func TestStatefulSetPartition(t *testing.T) {
	e := newEnv(t)
	e.kubelet()
	startStatefulSets(e)
	e.createStatefulSet("web", 3, func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr[int32](2)}
	})
	first := e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 3 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	st := e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.UpdatedReplicas != 1 || st.CurrentReplicas != 2 || st.ReadyReplicas != 3 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if st.CurrentRevision != first.CurrentRevision {
		t.Errorf("currentRevision %q, want %q kept below the partition", st.CurrentRevision, first.CurrentRevision)
	}
	for name, image := range map[string]string{"web-0": "busybox", "web-1": "busybox", "web-2": "busybox:2"} {
		if got := e.pod(name).Spec.Containers[0].Image; got != image {
			t.Errorf("%s runs %s, want %s", name, got, image)
		}
	}
	// A pod below the partition that is deleted comes back at the current revision.
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("web-0 recreated", func() error {
		p, err := e.client.CoreV1().Pods("default").Get(e.ctx, "web-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if podRevision(p) != first.CurrentRevision {
			return fmt.Errorf("revision %s", podRevision(p))
		}
		return nil
	})
	e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr[int32](0) })
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.UpdatedReplicas != 3 || st.CurrentRevision != st.UpdateRevision || st.ReadyReplicas != 3 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
}

func TestStatefulSetOnDelete(t *testing.T) {
	e := newEnv(t)
	e.kubelet()
	startStatefulSets(e)
	e.createStatefulSet("web", 2, func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	})
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 2 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	old := e.pod("web-1").UID
	e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.UpdateRevision == st.CurrentRevision || st.UpdatedReplicas != 0 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if p := e.pod("web-1"); p.UID != old {
		t.Fatalf("web-1 replaced without being deleted")
	}
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.UpdatedReplicas != 1 || st.ReadyReplicas != 2 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if got := e.pod("web-1").Spec.Containers[0].Image; got != "busybox:2" {
		t.Errorf("recreated web-1 runs %s, want busybox:2", got)
	}
}

func TestStatefulSetReplacesFailedPod(t *testing.T) {
	e := newEnv(t)
	startStatefulSets(e)
	e.createStatefulSet("web", 1)
	e.waitPods("web-0")
	old := e.pod("web-0").UID
	e.setPodStatus("web-0", corev1.PodFailed, "", false, 0)
	e.eventually("web-0 recreated", func() error {
		p, err := e.client.CoreV1().Pods("default").Get(e.ctx, "web-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID == old {
			return fmt.Errorf("still the failed pod")
		}
		return nil
	})
}

func TestStatefulSetAdoptsOrphans(t *testing.T) {
	e := newEnv(t)
	startStatefulSets(e)
	e.createPod("web-0", map[string]string{"app": "web"})
	e.createPod("web-other", map[string]string{"app": "web"})
	set := e.createStatefulSet("web", 1)
	e.eventually("web-0 adopted", func() error {
		if ref := metav1.GetControllerOf(e.pod("web-0")); ref == nil || ref.UID != set.UID {
			return fmt.Errorf("controller %+v", ref)
		}
		return nil
	})
	if ref := metav1.GetControllerOf(e.pod("web-other")); ref != nil {
		t.Errorf("web-other, not named as a member, was adopted: %+v", ref)
	}
}

func TestStatefulSetHistoryLimit(t *testing.T) {
	e := newEnv(t)
	e.kubelet()
	startStatefulSets(e)
	e.createStatefulSet("web", 1, func(s *appsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = ptr[int32](1) })
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 1 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	for _, image := range []string{"busybox:2", "busybox:3", "busybox:4"} {
		e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = image })
		e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
			if st.CurrentRevision != st.UpdateRevision || st.UpdatedReplicas != 1 || st.ReadyReplicas != 1 {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
	}
	e.eventually("history truncated", func() error {
		// The live revision plus one of history.
		if revs := e.revisionNumbers(); len(revs) != 2 {
			return fmt.Errorf("revisions %v", revs)
		}
		return nil
	})
	for _, n := range e.revisionNumbers() {
		if n < 3 {
			t.Errorf("revision %d kept, want only the newest two (3, 4): %v", n, e.revisionNumbers())
		}
	}
}

func TestStatefulSetMaxUnavailable(t *testing.T) {
	e := newEnv(t)
	startStatefulSets(e)
	e.createStatefulSet("web", 4, func(s *appsv1.StatefulSet) {
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ptr(intstr.FromInt32(2))}
	})
	e.waitPods("web-0", "web-1", "web-2", "web-3")
	for _, n := range []string{"web-0", "web-1", "web-2", "web-3"} {
		e.readyPod(n)
	}
	e.waitSetStatus("web", func(st appsv1.StatefulSetStatus) error {
		if st.ReadyReplicas != 4 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	d := e.recordDeletions()
	e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	// The two highest go at once; the replacements are not ready, so the
	// others wait.
	e.eventually("two replaced", func() error {
		st := e.statefulSet("web").Status
		if st.UpdatedReplicas != 2 {
			return fmt.Errorf("updated %d", st.UpdatedReplicas)
		}
		return nil
	})
	d.wait(e, true, "web-2", "web-3")
}

func TestStatefulSetClaims(t *testing.T) {
	retain, del := appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	tests := []struct {
		name                    string
		whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType
		// owner0 and owner1 name the controller of data-web-0 (in range)
		// and data-web-1 (scaled down) after the scale to 1: "", "set"
		// or "pod".
		owner0, owner1 string
	}{
		{"retain", retain, retain, "", ""},
		{"delete with the set", del, retain, "set", "set"},
		{"delete when scaled", retain, del, "", "pod"},
		{"delete always", del, del, "set", "pod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.kubelet()
			startStatefulSets(e)
			set := e.createStatefulSet("web", 2, func(s *appsv1.StatefulSet) {
				s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: tc.whenDeleted, WhenScaled: tc.whenScaled,
				}
				dataClaims(s)
				s.Spec.VolumeClaimTemplates[0].Labels = map[string]string{"tier": "db"}
				s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			})
			e.waitPods("web-0", "web-1")
			claims := e.client.CoreV1().PersistentVolumeClaims("default")
			for _, name := range []string{"web-0", "web-1"} {
				pod := e.pod(name)
				claim, err := claims.Get(e.ctx, "data-"+name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("claim of %s: %v", name, err)
				}
				want := []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + name},
				}}}
				if diff := cmp.Diff(want, pod.Spec.Volumes); diff != "" {
					t.Errorf("%s volumes (-want +got):\n%s", name, diff)
				}
				if cmp.Diff(map[string]string{"app": "web", "tier": "db"}, claim.Labels) != "" {
					t.Errorf("claim %s labels = %v, want the template's and the selector's", claim.Name, claim.Labels)
				}
				if rvNum(t, claim.ResourceVersion) > rvNum(t, pod.ResourceVersion) {
					// The claim's version is its first (nothing updates
					// it); a pod's only grows: a claim newer than the
					// pod's latest version came after the pod.
					t.Errorf("claim %s (rv %s) made after pod %s (rv %s)", claim.Name, claim.ResourceVersion, name, pod.ResourceVersion)
				}
			}
			web1 := e.pod("web-1")
			e.updateStatefulSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr[int32](1) })
			e.waitPods("web-0")
			for _, c := range []struct{ claim, want string }{{"data-web-0", tc.owner0}, {"data-web-1", tc.owner1}} {
				claim, err := claims.Get(e.ctx, c.claim, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("claim %s: %v", c.claim, err)
				}
				got := ""
				if ref := metav1.GetControllerOf(claim); ref != nil {
					switch ref.UID {
					case set.UID:
						got = "set"
					case web1.UID:
						got = "pod"
					default:
						got = fmt.Sprintf("%s %s", ref.Kind, ref.Name)
					}
				}
				if got != c.want {
					t.Errorf("claim %s controlled by %q, want %q (refs %+v)", c.claim, got, c.want, claim.OwnerReferences)
				}
			}
		})
	}
}

// dataClaims gives a StatefulSet the claim template data (1Gi).
func dataClaims(s *appsv1.StatefulSet) {
	s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
}

// TestStatefulSetWaitsForDeletedClaim checks that a pod is not made
// while its claim is being deleted, and is once the claim is gone.
func TestStatefulSetWaitsForDeletedClaim(t *testing.T) {
	e := newEnv(t)
	claim := e.createClaim("data-web-0", "1Gi", nil)
	claims := e.client.CoreV1().PersistentVolumeClaims("default")
	// The protection finalizer keeps the claim, being deleted: no
	// controller removes it in this test.
	if err := claims.Delete(e.ctx, claim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	log := &eventLog{}
	startStatefulSetsWith(e, StatefulSetOptions{Recorder: log})
	e.createStatefulSet("web", 1, dataClaims)
	e.eventually("FailedCreate", func() error {
		if log.count("FailedCreate") == 0 {
			return fmt.Errorf("events %s", log)
		}
		return nil
	})
	if got := e.podNames(); len(got) != 0 {
		t.Fatalf("pods %v made while their claim is being deleted", got)
	}
	claim, err := claims.Get(e.ctx, claim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := claim.UID
	claim.Finalizers = nil
	if _, err := claims.Update(e.ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitPods("web-0")
	claim, err = claims.Get(e.ctx, claim.Name, metav1.GetOptions{})
	if err != nil || claim.UID == old {
		t.Fatalf("claim after the pod was made: %v, uid %s (old %s); want a new claim", err, claim.UID, old)
	}
}

// rvNum parses a resourceVersion, the store's revision.
func rvNum(t *testing.T, rv string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", rv, err)
	}
	return n
}
