package controllers

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// startDeployments runs the Deployment controller and the ReplicaSet
// manager under it.
func startDeployments(e *env) {
	e.t.Helper()
	startDeploymentsAt(e, time.Now)
}

// startDeploymentsAt runs them with the Deployment controller's clock
// now.
func startDeploymentsAt(e *env, now func() time.Time) {
	e.t.Helper()
	apps, pods := e.factory.Apps().V1(), e.factory.Core().V1().Pods()
	rsm, err := NewReplicaSetManager(e.client, apps.ReplicaSets(), pods, e.lg, ReplicationOptions{})
	if err != nil {
		e.t.Fatalf("NewReplicaSetManager: %v", err)
	}
	dc, err := NewDeploymentController(e.client, apps.Deployments(), apps.ReplicaSets(), e.lg, DeploymentOptions{Now: now})
	if err != nil {
		e.t.Fatalf("NewDeploymentController: %v", err)
	}
	e.run(func(ctx context.Context) error { return rsm.Run(ctx, 2) }, func(ctx context.Context) error { return dc.Run(ctx, 2) })
}

func (e *env) createDeployment(name string, replicas int32, strategy appsv1.DeploymentStrategy, mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	e.t.Helper()
	lbls := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: testPodSpec()},
			Strategy: strategy,
		},
	}
	for _, m := range mutate {
		m(d)
	}
	out, err := e.client.AppsV1().Deployments("default").Create(e.ctx, d, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create deployment %q: %v", name, err)
	}
	return out
}

// updateDeployment applies change to the current Deployment.
func (e *env) updateDeployment(name string, change func(*appsv1.Deployment)) {
	e.t.Helper()
	ds := e.client.AppsV1().Deployments("default")
	e.eventually("update "+name, func() error {
		d, err := ds.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(d)
		_, err = ds.Update(e.ctx, d, metav1.UpdateOptions{})
		return err
	})
}

func (e *env) replicaSets() []appsv1.ReplicaSet {
	e.t.Helper()
	list, err := e.client.AppsV1().ReplicaSets("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list replicasets: %v", err)
	}
	return list.Items
}

// readyAll marks every pod that is not being deleted running and ready,
// as a kubelet would, and returns how many it changed.
func (e *env) readyAll() int {
	e.t.Helper()
	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	n := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && !podReady(&p) {
			e.setPodStatus(p.Name, corev1.PodRunning, "10.42.0.7", true, 0)
			n++
		}
	}
	return n
}

// waitComplete waits for name to be fully rolled out as `kubectl rollout
// status` sees it, marking pods ready as they come, and calls check on
// every state seen on the way.
func (e *env) waitComplete(name string, check func(d *appsv1.Deployment)) *appsv1.Deployment {
	e.t.Helper()
	var d *appsv1.Deployment
	e.eventually("rollout of "+name, func() error {
		var err error
		if d, err = e.client.AppsV1().Deployments("default").Get(e.ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		if check != nil {
			check(d)
		}
		e.readyAll()
		n := *d.Spec.Replicas
		st := d.Status
		cond := condition(st, appsv1.DeploymentProgressing)
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != n || st.Replicas != n || st.AvailableReplicas != n ||
			cond == nil || cond.Reason != reasonNewRSAvailable {
			return fmt.Errorf("generation %d, status %+v", d.Generation, st)
		}
		return nil
	})
	return d
}

func rollingUpdate(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

func TestDeploymentCreatesReplicaSet(t *testing.T) {
	e := newEnv(t)
	startDeployments(e)
	d := e.createDeployment("web", 3, appsv1.DeploymentStrategy{})
	d = e.waitComplete("web", nil)
	rss := e.replicaSets()
	if len(rss) != 1 {
		t.Fatalf("%d replicasets, want 1", len(rss))
	}
	rs := rss[0]
	hash := computeHash(&d.Spec.Template, nil)
	if rs.Name != "web-"+hash || rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("replicaset %q labels %v selector %v; want web-%s labelled and selecting its hash", rs.Name, rs.Labels, rs.Spec.Selector, hash)
	}
	if ref := metav1.GetControllerOf(&rs); ref == nil || ref.UID != d.UID || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
		t.Errorf("replicaset controller = %+v, want deployment %s", ref, d.UID)
	}
	if rs.Annotations[revisionAnnotation] != "1" || d.Annotations[revisionAnnotation] != "1" {
		t.Errorf("revision of replicaset %q, of deployment %q; want 1, 1", rs.Annotations[revisionAnnotation], d.Annotations[revisionAnnotation])
	}
	if c := condition(d.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != reasonMinAvailable {
		t.Errorf("Available condition = %+v, want True %s", c, reasonMinAvailable)
	}
	if got := e.activePodNames(); len(got) != 3 {
		t.Errorf("pods = %v, want 3", got)
	}
}

// rolloutInvariants returns a check that fails the test when the
// ReplicaSets would hold more than replicas+surge pods or fewer than
// replicas-unavailable pods are ready.
func (e *env) rolloutInvariants(replicas, surge, unavailable int) func(*appsv1.Deployment) {
	return func(*appsv1.Deployment) {
		total := 0
		for _, rs := range e.replicaSets() {
			total += int(*rs.Spec.Replicas)
		}
		if total > replicas+surge {
			e.t.Errorf("replicasets total %d replicas, more than %d", total, replicas+surge)
		}
		list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		ready := 0
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready++
			}
		}
		if ready < replicas-unavailable {
			e.t.Errorf("%d ready pods, fewer than %d", ready, replicas-unavailable)
		}
	}
}

func setImage(image string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image }
}

func TestDeploymentRollingUpdate(t *testing.T) {
	e := newEnv(t)
	startDeployments(e)
	e.createDeployment("web", 4, rollingUpdate(intstr.FromInt32(1), intstr.FromInt32(1)))
	v1 := e.waitComplete("web", nil)
	e.updateDeployment("web", setImage("busybox:2"))
	// Before any new pod is ready: one surge pod and one old pod gone,
	// then one more new pod in the freed room, and no further.
	e.eventually("first step", func() error {
		sizes := map[string]int32{}
		for _, rs := range e.replicaSets() {
			sizes[rs.Spec.Template.Spec.Containers[0].Image] = *rs.Spec.Replicas
		}
		if sizes["busybox"] != 3 || sizes["busybox:2"] != 2 {
			return fmt.Errorf("replicas by image = %v, want busybox 3, busybox:2 2", sizes)
		}
		return nil
	})
	e.rolloutInvariants(4, 1, 1)(nil)
	d := e.waitComplete("web", e.rolloutInvariants(4, 1, 1))
	if d.Annotations[revisionAnnotation] != "2" {
		t.Errorf("revision = %q, want 2", d.Annotations[revisionAnnotation])
	}
	for _, rs := range e.replicaSets() {
		want := int32(0)
		if rs.Spec.Template.Spec.Containers[0].Image == "busybox:2" {
			want = 4
		}
		if *rs.Spec.Replicas != want {
			t.Errorf("replicaset %q has %d replicas, want %d", rs.Name, *rs.Spec.Replicas, want)
		}
	}

	// Rollback as kubectl rollout undo does it: the old template, without
	// its hash label, goes back into the Deployment.
	e.updateDeployment("web", func(d *appsv1.Deployment) { d.Spec.Template = v1.Spec.Template })
	d = e.waitComplete("web", e.rolloutInvariants(4, 1, 1))
	rss := e.replicaSets()
	if len(rss) != 2 {
		t.Fatalf("%d replicasets after rollback, want the 2 there were", len(rss))
	}
	for _, rs := range rss {
		if rs.Spec.Template.Spec.Containers[0].Image == "busybox" && (rs.Annotations[revisionAnnotation] != "3" || *rs.Spec.Replicas != 4) {
			t.Errorf("rolled back replicaset: revision %q, replicas %d; want 3, 4", rs.Annotations[revisionAnnotation], *rs.Spec.Replicas)
		}
	}
	if d.Annotations[revisionAnnotation] != "3" {
		t.Errorf("deployment revision after rollback = %q, want 3", d.Annotations[revisionAnnotation])
	}
}

func TestDeploymentSurgeOnly(t *testing.T) {
	e := newEnv(t)
	startDeployments(e)
	e.createDeployment("web", 3, rollingUpdate(intstr.FromString("34%"), intstr.FromInt32(0)))
	e.waitComplete("web", nil)
	e.updateDeployment("web", setImage("busybox:2"))
	// 34% of 3 rounds up to 2 surge pods; none may be unavailable.
	e.waitComplete("web", e.rolloutInvariants(3, 2, 0))
}

func TestDeploymentRecreate(t *testing.T) {
	e := newEnv(t)
	startDeployments(e)
	e.createDeployment("web", 2, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType})
	e.waitComplete("web", nil)
	e.updateDeployment("web", setImage("busybox:2"))
	e.waitComplete("web", func(*appsv1.Deployment) {
		rss := e.replicaSets()
		oldRunning, newExists := false, false
		for _, rs := range rss {
			if rs.Spec.Template.Spec.Containers[0].Image == "busybox" {
				oldRunning = rs.Status.Replicas > 0 && *rs.Spec.Replicas > 0
			} else {
				newExists = *rs.Spec.Replicas > 0
			}
		}
		if oldRunning && newExists {
			t.Errorf("old and new replicasets both have pods: %d replicasets", len(rss))
		}
	})
}

func TestDeploymentPauseAndHistory(t *testing.T) {
	e := newEnv(t)
	startDeployments(e)
	strategy := rollingUpdate(intstr.FromInt32(1), intstr.FromInt32(0))
	e.createDeployment("web", 2, strategy)
	e.waitComplete("web", nil)
	e.updateDeployment("web", func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.RevisionHistoryLimit = ptr[int32](1)
		setImage("busybox:2")(d)
	})
	e.eventually("paused", func() error {
		d, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := condition(d.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != reasonPaused || c.Status != corev1.ConditionUnknown {
			return fmt.Errorf("Progressing = %+v, want Unknown %s", c, reasonPaused)
		}
		return nil
	})
	e.updateDeployment("web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr[int32](3) })
	e.eventually("scaled while paused", func() error {
		rss := e.replicaSets()
		if len(rss) != 1 || *rss[0].Spec.Replicas != 3 {
			return fmt.Errorf("%d replicasets, want the one of 3 replicas and no new one", len(rss))
		}
		return nil
	})
	// Resume; then two more templates: only one old ReplicaSet is kept.
	e.updateDeployment("web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	e.waitComplete("web", nil)
	e.updateDeployment("web", setImage("busybox:3"))
	e.waitComplete("web", nil)
	e.eventually("history limit", func() error {
		var images []string
		for _, rs := range e.replicaSets() {
			images = append(images, rs.Spec.Template.Spec.Containers[0].Image)
		}
		slices.Sort(images)
		if !slices.Equal(images, []string{"busybox:2", "busybox:3"}) {
			return fmt.Errorf("replicasets of %v, want busybox:2 and busybox:3", images)
		}
		return nil
	})
}

func TestDeploymentProgressDeadline(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Now()}
	startDeploymentsAt(e, clock.Now)
	e.createDeployment("web", 2, appsv1.DeploymentStrategy{})
	progressingReason := func(want string) func() error {
		return func() error {
			d, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if c := condition(d.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != want {
				return fmt.Errorf("Progressing = %+v, want reason %s", c, want)
			}
			if want == reasonTimedOut && condition(d.Status, appsv1.DeploymentProgressing).Status != corev1.ConditionFalse {
				return fmt.Errorf("Progressing status not False")
			}
			return nil
		}
	}
	// No pod ever gets ready.
	e.eventually("pods created", func() error {
		if got := e.activePodNames(); len(got) != 2 {
			return fmt.Errorf("pods = %v", got)
		}
		return nil
	})
	e.eventually("progressing", progressingReason(reasonRSUpdated))
	clock.Advance(601 * time.Second)
	// A label change makes the controller look again without a new
	// generation.
	e.updateDeployment("web", func(d *appsv1.Deployment) { d.Labels = map[string]string{"touched": "1"} })
	e.eventually("deadline exceeded", progressingReason(reasonTimedOut))
	// Progress after the deadline: ready pods complete the rollout.
	e.waitComplete("web", nil)
}

// waitReplicasByImage waits for the ReplicaSets to have the sizes of
// want, by image.
func (e *env) waitReplicasByImage(what string, want map[string]int32) {
	e.t.Helper()
	e.eventually(what, func() error {
		got := map[string]int32{}
		for _, rs := range e.replicaSets() {
			got[rs.Spec.Template.Spec.Containers[0].Image] = *rs.Spec.Replicas
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("replicas by image = %v, want %v", got, want)
		}
		return nil
	})
}

func TestDeploymentProportionalScaling(t *testing.T) {
	e := newEnv(t)
	startDeployments(e)
	e.createDeployment("web", 10, rollingUpdate(intstr.FromInt32(3), intstr.FromInt32(2)))
	e.waitComplete("web", nil)
	// The new pods never get ready: the rollout stops with 13 pods, 8
	// old ones (10 - 2 unavailable) and 5 new ones.
	e.updateDeployment("web", setImage("busybox:bad"))
	e.waitReplicasByImage("stuck rollout", map[string]int32{"busybox": 8, "busybox:bad": 5})
	// Scaling to 20 mid-rollout adds the 10 more pods allowed (20 + 3
	// surge - 13) in proportion: 8*23/13 ≈ 14 and 5*23/13 ≈ 9.
	e.updateDeployment("web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr[int32](20) })
	e.waitReplicasByImage("proportional scale up", map[string]int32{"busybox": 14, "busybox:bad": 9})
	for _, rs := range e.replicaSets() {
		if rs.Annotations[desiredReplicasAnnotation] != "20" || rs.Annotations[maxReplicasAnnotation] != "23" {
			t.Errorf("replicaset %q annotations %v, want desired 20 and max 23", rs.Name, rs.Annotations)
		}
	}
}

func TestDeploymentRestart(t *testing.T) {
	e := newEnv(t)
	startDeployments(e)
	e.createDeployment("web", 2, appsv1.DeploymentStrategy{})
	first := e.waitComplete("web", nil)
	// kubectl rollout restart: a template annotation.
	e.updateDeployment("web", func(d *appsv1.Deployment) {
		d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
	})
	d := e.waitComplete("web", nil)
	if d.Annotations[revisionAnnotation] != "2" {
		t.Errorf("revision after restart = %q, want 2", d.Annotations[revisionAnnotation])
	}
	hash := computeHash(&d.Spec.Template, nil)
	if hash == computeHash(&first.Spec.Template, nil) {
		t.Fatal("the restarted template has the hash of the first one")
	}
	for _, rs := range e.replicaSets() {
		want := int32(0)
		if rs.Name == "web-"+hash {
			want = 2
		}
		if *rs.Spec.Replicas != want {
			t.Errorf("replicaset %q has %d replicas, want %d", rs.Name, *rs.Spec.Replicas, want)
		}
	}
}

func TestDeploymentMinReadySeconds(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Now()}
	apps, pods := e.factory.Apps().V1(), e.factory.Core().V1().Pods()
	rsm, err := NewReplicaSetManager(e.client, apps.ReplicaSets(), pods, e.lg, ReplicationOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := NewDeploymentController(e.client, apps.Deployments(), apps.ReplicaSets(), e.lg, DeploymentOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.run(func(ctx context.Context) error { return rsm.Run(ctx, 2) }, func(ctx context.Context) error { return dc.Run(ctx, 2) })
	e.createDeployment("web", 1, appsv1.DeploymentStrategy{}, func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 30 })
	e.eventually("pod", func() error {
		if e.readyAll() == 0 {
			return fmt.Errorf("no pod made ready yet")
		}
		return nil
	})
	e.eventually("ready but not available", func() error {
		d, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ReadyReplicas != 1 || d.Status.ObservedGeneration != d.Generation {
			return fmt.Errorf("status %+v, want 1 ready", d.Status)
		}
		if d.Status.AvailableReplicas != 0 {
			t.Fatalf("available %d before minReadySeconds, want 0", d.Status.AvailableReplicas)
		}
		return nil
	})
	clock.Advance(31 * time.Second)
	// A change of the pod makes the ReplicaSet count again.
	name := e.activePodNames()[0]
	p, err := e.client.CoreV1().Pods("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Annotations = map[string]string{"touched": "1"}
	if _, err := e.client.CoreV1().Pods("default").Update(e.ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitComplete("web", nil)
}
