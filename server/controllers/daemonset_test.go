package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
)

// startDaemonSets runs a DaemonSet controller, and with it the garbage
// collector when gc is set.
func startDaemonSets(e *env, gc bool) {
	e.t.Helper()
	apps := e.factory.Apps().V1()
	c, err := NewDaemonSetController(e.client, apps.DaemonSets(), apps.ControllerRevisions(), e.factory.Core().V1().Pods(), e.factory.Core().V1().Nodes(), e.lg, DaemonSetOptions{})
	if err != nil {
		e.t.Fatalf("NewDaemonSetController: %v", err)
	}
	runs := []func(context.Context) error{func(ctx context.Context) error { return c.Run(ctx, 2) }}
	if gc {
		g, err := NewGarbageCollector(e.client, e.factory, e.lg, GarbageCollectorOptions{})
		if err != nil {
			e.t.Fatalf("NewGarbageCollector: %v", err)
		}
		runs = append(runs, func(ctx context.Context) error { return g.Run(ctx, 2) })
	}
	e.run(runs...)
}

func (e *env) createDaemonNode(name string, lbls map[string]string, taints ...corev1.Taint) {
	e.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Spec: corev1.NodeSpec{Taints: taints}}
	if _, err := e.client.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node %q: %v", name, err)
	}
}

func (e *env) updateNode(name string, f func(*corev1.Node)) {
	e.t.Helper()
	n, err := e.client.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	f(n)
	if _, err := e.client.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update node %q: %v", name, err)
	}
}

func testDS(name string, mutate ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	lbls := map[string]string{"daemon": name}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: testPodSpec()},
		},
	}
	for _, m := range mutate {
		m(ds)
	}
	return ds
}

func (e *env) createDS(ds *appsv1.DaemonSet) *appsv1.DaemonSet {
	e.t.Helper()
	out, err := e.client.AppsV1().DaemonSets("default").Create(e.ctx, ds, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create daemonset %q: %v", ds.Name, err)
	}
	return out
}

func (e *env) updateDS(name string, f func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	e.t.Helper()
	dss := e.client.AppsV1().DaemonSets("default")
	var out *appsv1.DaemonSet
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ds, err := dss.Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(ds)
		out, err = dss.Update(e.ctx, ds, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatalf("update daemonset %q: %v", name, err)
	}
	return out
}

// daemonPods returns the live pods of ds by the node they are meant for.
func (e *env) daemonPods(ds string) (map[string][]corev1.Pod, error) {
	list, err := e.client.CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{LabelSelector: "daemon=" + ds})
	if err != nil {
		return nil, err
	}
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		node, ok := targetNode(&p)
		if !ok {
			return nil, fmt.Errorf("pod %q has no target node: %+v", p.Name, p.Spec.Affinity)
		}
		out[node] = append(out[node], p)
	}
	return out, nil
}

// waitDaemonNodes waits until ds has exactly one live pod on each of
// nodes and none elsewhere, and returns them by node.
func (e *env) waitDaemonNodes(ds string, nodes ...string) map[string]corev1.Pod {
	e.t.Helper()
	var got map[string]corev1.Pod
	e.eventually(fmt.Sprintf("pods of %s on %v", ds, nodes), func() error {
		byNode, err := e.daemonPods(ds)
		if err != nil {
			return err
		}
		var on []string
		got = map[string]corev1.Pod{}
		for n, pods := range byNode {
			if len(pods) != 1 {
				return fmt.Errorf("%d pods on node %s", len(pods), n)
			}
			on = append(on, n)
			got[n] = pods[0]
		}
		sort.Strings(on)
		if !slices.Equal(on, nodes) {
			return fmt.Errorf("pods on %v", on)
		}
		return nil
	})
	return got
}

// readyDaemonPods marks every live pod of ds running and ready on its node.
func (e *env) readyDaemonPods(ds string) {
	e.t.Helper()
	byNode, err := e.daemonPods(ds)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, pods := range byNode {
		for _, p := range pods {
			if !podReady(&p) {
				e.setPodStatus(p.Name, corev1.PodRunning, "10.42.0.9", true, 0)
			}
		}
	}
}

func (e *env) waitDSStatus(name string, want appsv1.DaemonSetStatus) {
	e.t.Helper()
	e.eventually("status of "+name, func() error {
		ds, err := e.client.AppsV1().DaemonSets("default").Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		got := ds.Status
		got.Conditions, got.CollisionCount = nil, nil
		want.ObservedGeneration = ds.Generation
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("status (-want +got):\n%s", diff)
		}
		return nil
	})
}

// revisions returns ds's ControllerRevisions by revision number.
func (e *env) revisions(ds string) map[int64]appsv1.ControllerRevision {
	e.t.Helper()
	list, err := e.client.AppsV1().ControllerRevisions("default").List(e.ctx, metav1.ListOptions{LabelSelector: "daemon=" + ds})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int64]appsv1.ControllerRevision{}
	for _, r := range list.Items {
		out[r.Revision] = r
	}
	return out
}

func TestDaemonSetPlacesPodsOnEligibleNodes(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	ssd := map[string]string{"disk": "ssd"}
	e.createDaemonNode("a", ssd)
	e.createDaemonNode("b", ssd, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
	e.createDaemonNode("c", nil)
	e.createDaemonNode("d", ssd, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	ds := e.createDS(testDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = ssd }))

	pods := e.waitDaemonNodes("agent", "a", "d")
	pod := pods["a"]
	revs := e.revisions("agent")
	rev, ok := revs[1]
	if len(revs) != 1 || !ok {
		t.Fatalf("revisions = %v, want one, number 1", revs)
	}
	hash := rev.Labels[appsv1.ControllerRevisionHashLabelKey]
	if rev.Name != "agent-"+hash || !metav1.IsControlledBy(&rev, ds) {
		t.Errorf("revision %q (hash %q) controlled by %+v", rev.Name, hash, metav1.GetControllerOf(&rev))
	}
	if pod.Labels[appsv1.ControllerRevisionHashLabelKey] != hash || pod.Labels[podTemplateGenerationLabel] != "1" {
		t.Errorf("pod labels = %v, want hash %q and template generation 1", pod.Labels, hash)
	}
	if !metav1.IsControlledBy(&pod, ds) {
		t.Errorf("pod controller = %+v", metav1.GetControllerOf(&pod))
	}
	for _, want := range daemonTolerations {
		if !slices.Contains(pod.Spec.Tolerations, want) {
			t.Errorf("pod tolerations %+v lack %+v", pod.Spec.Tolerations, want)
		}
	}
	if pod.Spec.NodeName != "" || pod.Spec.NodeSelector["disk"] != "ssd" {
		t.Errorf("pod nodeName %q, nodeSelector %v; want the scheduler to bind it, selector kept", pod.Spec.NodeName, pod.Spec.NodeSelector)
	}
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberUnavailable: 2})

	e.readyDaemonPods("agent")
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2})

	// Nodes that start or stop matching gain or lose the pod; a node
	// tainted NoSchedule keeps its pod (counted as misscheduled), one
	// tainted NoExecute loses it.
	e.updateNode("c", func(n *corev1.Node) { n.Labels = ssd })
	e.updateNode("a", func(n *corev1.Node) { n.Labels = nil })
	e.waitDaemonNodes("agent", "c", "d")
	e.updateNode("d", func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoSchedule})
	})
	e.readyDaemonPods("agent")
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberMisscheduled: 1,
		NumberReady: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1})
	e.waitDaemonNodes("agent", "c", "d")
	e.updateNode("d", func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute})
	})
	e.waitDaemonNodes("agent", "c")
}

func TestDaemonSetNodeJoinsAndLeaves(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	e.createDaemonNode("a", nil)
	e.createDS(testDS("agent"))
	e.waitDaemonNodes("agent", "a")
	e.createDaemonNode("b", nil)
	e.waitDaemonNodes("agent", "a", "b")
	if err := e.client.CoreV1().Nodes().Delete(e.ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitDaemonNodes("agent", "b")
}

// TestDaemonSetReplacesFailedPods: a failed daemon pod is deleted and a
// new one takes its place (upstream's "should retry creating failed
// daemon pods").
func TestDaemonSetReplacesFailedPods(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	e.createDaemonNode("a", nil)
	e.createDS(testDS("agent"))
	failed := e.waitDaemonNodes("agent", "a")["a"]
	e.setPodStatus(failed.Name, corev1.PodFailed, "", false, 0)
	e.eventually("a new pod", func() error {
		byNode, err := e.daemonPods("agent")
		if err != nil {
			return err
		}
		if pods := byNode["a"]; len(pods) != 1 || pods[0].UID == failed.UID {
			return fmt.Errorf("pods on a = %d, the failed one among them", len(pods))
		}
		return nil
	})
}

func TestDaemonSetRollingUpdate(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	for _, n := range []string{"a", "b", "c"} {
		e.createDaemonNode(n, nil)
	}
	e.createDS(testDS("agent"))
	before := e.waitDaemonNodes("agent", "a", "b", "c")
	e.readyDaemonPods("agent")
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3})

	ds := e.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	// maxUnavailable 1: one node at a time, each once its new pod is
	// available.
	for step := 1; step <= 3; step++ {
		e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: int32(step),
			NumberAvailable: 2, NumberUnavailable: 1})
		byNode, err := e.daemonPods("agent")
		if err != nil {
			t.Fatal(err)
		}
		old := 0
		for n, pods := range byNode {
			if pods[0].UID == before[n].UID {
				old++
			}
		}
		if old != 3-step {
			t.Fatalf("step %d: %d old pods left, want %d", step, old, 3-step)
		}
		e.readyDaemonPods("agent")
	}
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3})
	revs := e.revisions("agent")
	cur := revs[2]
	for n, p := range e.waitDaemonNodes("agent", "a", "b", "c") {
		if p.Spec.Containers[0].Image != "busybox:2" || p.Labels[appsv1.ControllerRevisionHashLabelKey] != cur.Labels[appsv1.ControllerRevisionHashLabelKey] ||
			p.Labels[podTemplateGenerationLabel] != "2" {
			t.Errorf("pod on %s: image %q, labels %v; want busybox:2, revision 2's hash, template generation 2", n, p.Spec.Containers[0].Image, p.Labels)
		}
	}
	if len(revs) != 2 || ds.Annotations[appsv1.DeprecatedTemplateGeneration] != "2" {
		t.Errorf("revisions %d, template generation %q; want 2, 2", len(revs), ds.Annotations[appsv1.DeprecatedTemplateGeneration])
	}
}

// TestDaemonSetRollbackKeepsPods: going back to the previous template in
// the middle of a rollout reuses its revision (renumbered as the newest)
// and leaves the pods that still run it alone.
func TestDaemonSetRollbackKeepsPods(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	e.createDaemonNode("a", nil)
	e.createDaemonNode("b", nil)
	e.createDS(testDS("agent"))
	e.waitDaemonNodes("agent", "a", "b")
	e.readyDaemonPods("agent")
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2})
	first := e.revisions("agent")[1]

	e.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "foo:non-existent" })
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1, NumberUnavailable: 1})
	byNode, err := e.daemonPods("agent")
	if err != nil {
		t.Fatal(err)
	}
	var survivor corev1.Pod
	for _, pods := range byNode {
		if pods[0].Spec.Containers[0].Image == "busybox" {
			survivor = pods[0]
		}
	}
	if survivor.Name == "" {
		t.Fatalf("no old pod left mid-rollout: %v", byNode)
	}

	e.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "busybox" })
	var pods map[string]corev1.Pod
	e.eventually("the old image back on both nodes", func() error {
		pods = e.waitDaemonNodes("agent", "a", "b")
		for n, p := range pods {
			if p.Spec.Containers[0].Image != "busybox" {
				return fmt.Errorf("node %s runs %s", n, p.Spec.Containers[0].Image)
			}
		}
		return nil
	})
	e.readyDaemonPods("agent")
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2})
	node, _ := targetNode(&survivor)
	if p := pods[node]; p.UID != survivor.UID {
		t.Errorf("the old pod %q was replaced by %q on rollback", survivor.Name, p.Name)
	}
	revs := e.revisions("agent")
	if r, ok := revs[3]; len(revs) != 2 || !ok || r.Name != first.Name {
		t.Errorf("revisions after rollback = %d, number 3 = %q; want 2, the first one (%q) renumbered", len(revs), r.Name, first.Name)
	}
}

func TestDaemonSetOnDelete(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	e.createDaemonNode("a", nil)
	e.createDaemonNode("b", nil)
	e.createDS(testDS("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}))
	before := e.waitDaemonNodes("agent", "a", "b")
	e.readyDaemonPods("agent")
	e.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2})
	if n := len(e.revisions("agent")); n != 2 {
		t.Errorf("%d revisions, want 2", n)
	}
	for n, p := range e.waitDaemonNodes("agent", "a", "b") {
		if p.UID != before[n].UID {
			t.Errorf("pod on %s replaced without being deleted", n)
		}
	}
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, before["a"].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("a new pod on a", func() error {
		byNode, err := e.daemonPods("agent")
		if err != nil {
			return err
		}
		if p := byNode["a"]; len(p) != 1 || p[0].Spec.Containers[0].Image != "busybox:2" {
			return fmt.Errorf("pods on a: %d", len(p))
		}
		return nil
	})
}

// TestDaemonSetSurge: with maxSurge the new pod starts beside the old one,
// which goes once the new one is available.
func TestDaemonSetSurge(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	e.createDaemonNode("a", nil)
	e.createDaemonNode("b", nil)
	e.createDS(testDS("agent", func(ds *appsv1.DaemonSet) {
		one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: &one, MaxUnavailable: &zero}
	}))
	e.waitDaemonNodes("agent", "a", "b")
	e.readyDaemonPods("agent")
	e.waitDSStatus("agent", appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, UpdatedNumberScheduled: 2, NumberAvailable: 2})
	e.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "busybox:2" })

	var surged string
	e.eventually("a surge pod", func() error {
		byNode, err := e.daemonPods("agent")
		if err != nil {
			return err
		}
		for n, pods := range byNode {
			if len(pods) == 2 {
				surged = n
			}
		}
		if surged == "" || len(byNode["a"])+len(byNode["b"]) != 3 {
			return fmt.Errorf("pods: a %d, b %d", len(byNode["a"]), len(byNode["b"]))
		}
		return nil
	})
	e.readyDaemonPods("agent")
	e.eventually("the rollout", func() error {
		e.readyDaemonPods("agent")
		byNode, err := e.daemonPods("agent")
		if err != nil {
			return err
		}
		for n, pods := range byNode {
			if len(pods) != 1 || pods[0].Spec.Containers[0].Image != "busybox:2" {
				return fmt.Errorf("node %s has %d pods", n, len(pods))
			}
		}
		return nil
	})
}

// TestDaemonSetHistoryLimit: old revisions beyond the limit go, but not
// one a pod still runs.
func TestDaemonSetHistoryLimit(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	e.createDaemonNode("a", nil)
	e.createDS(testDS("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.RevisionHistoryLimit = ptr[int32](0)
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}))
	old := e.waitDaemonNodes("agent", "a")["a"]
	e.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	e.eventually("revision 2", func() error {
		if revs := e.revisions("agent"); len(revs) != 2 {
			return fmt.Errorf("%d revisions, want 2 (the old one runs)", len(revs))
		}
		return nil
	})
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("only revision 2", func() error {
		revs := e.revisions("agent")
		if _, ok := revs[2]; len(revs) != 1 || !ok {
			return fmt.Errorf("revisions %v", revs)
		}
		return nil
	})
}

// TestDaemonSetUndoPatch applies a revision's data as `kubectl rollout
// undo` does (a strategic merge patch) and finds the old template back.
func TestDaemonSetUndoPatch(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, false)
	e.createDaemonNode("a", nil)
	e.createDS(testDS("agent"))
	e.waitDaemonNodes("agent", "a")
	e.updateDS("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.Containers[0].Image = "busybox:2"
		ds.Spec.Template.Labels["extra"] = "yes"
	})
	var first appsv1.ControllerRevision
	e.eventually("two revisions", func() error {
		revs := e.revisions("agent")
		if len(revs) != 2 {
			return fmt.Errorf("%d revisions", len(revs))
		}
		first = revs[1]
		return nil
	})
	dss := e.client.AppsV1().DaemonSets("default")
	out, err := dss.Patch(e.ctx, "agent", types.StrategicMergePatchType, first.Data.Raw, metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch with revision 1: %v", err)
	}
	want := testDS("agent").Spec.Template
	if diff := cmp.Diff(want.Labels, out.Spec.Template.Labels); diff != "" || out.Spec.Template.Spec.Containers[0].Image != "busybox" {
		t.Errorf("template after undo: image %q, labels (-want +got):\n%s", out.Spec.Template.Spec.Containers[0].Image, diff)
	}
	var patch map[string]map[string]map[string]any
	if err := json.Unmarshal(first.Data.Raw, &patch); err != nil || patch["spec"]["template"]["$patch"] != "replace" {
		t.Errorf("revision data %s: want a spec.template replace patch (%v)", first.Data.Raw, err)
	}
}

// TestDaemonSetDeleteCascades: deleting a DaemonSet deletes its pods and
// revisions.
func TestDaemonSetDeleteCascades(t *testing.T) {
	e := newEnv(t)
	startDaemonSets(e, true)
	e.createDaemonNode("a", nil)
	e.createDS(testDS("agent"))
	e.waitDaemonNodes("agent", "a")
	if err := e.client.AppsV1().DaemonSets("default").Delete(e.ctx, "agent", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("pods and revisions gone", func() error {
		byNode, err := e.daemonPods("agent")
		if err != nil {
			return err
		}
		if revs := e.revisions("agent"); len(byNode) != 0 || len(revs) != 0 {
			return fmt.Errorf("%d nodes with pods, %d revisions", len(byNode), len(revs))
		}
		return nil
	})
}

func TestShouldRunOn(t *testing.T) {
	node := func(lbls map[string]string, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: lbls}, Spec: corev1.NodeSpec{Taints: taints}}
	}
	taint := func(key string, effect corev1.TaintEffect) corev1.Taint {
		return corev1.Taint{Key: key, Effect: effect}
	}
	for _, tc := range []struct {
		name      string
		mutate    func(*appsv1.DaemonSet)
		node      *corev1.Node
		run, keep bool
	}{
		{"plain", nil, node(nil), true, true},
		{"node name", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeName = "other" }, node(nil), false, false},
		{"node selector", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} }, node(nil), false, false},
		{"node affinity", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}}},
			}}}
		}, node(map[string]string{"zone": "b"}), true, true},
		{"NoSchedule", nil, node(nil, taint("gpu", corev1.TaintEffectNoSchedule)), false, true},
		{"NoExecute", nil, node(nil, taint("gpu", corev1.TaintEffectNoExecute)), false, false},
		{"PreferNoSchedule", nil, node(nil, taint("gpu", corev1.TaintEffectPreferNoSchedule)), true, true},
		{"tolerated", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
		}, node(nil, taint("gpu", corev1.TaintEffectNoExecute)), true, true},
		{"not ready", nil, node(nil, taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)), true, true},
		{"unreachable and not ready to schedule", nil, node(nil, taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute),
			taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule)), false, true},
		{"cordoned", nil, node(nil, taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)), true, true},
		{"memory pressure", nil, node(nil, taint(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)), true, true},
		{"network unavailable", nil, node(nil, taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), false, true},
		{"network unavailable, host network", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.HostNetwork = true },
			node(nil, taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := testDS("agent")
			if tc.mutate != nil {
				tc.mutate(ds)
			}
			if run, keep := shouldRunOn(newPlacement(ds), tc.node); run != tc.run || keep != tc.keep {
				t.Errorf("shouldRunOn = %t, %t; want %t, %t", run, keep, tc.run, tc.keep)
			}
		})
	}
}

func TestAddDaemonTolerationsReplaces(t *testing.T) {
	spec := corev1.PodSpec{Tolerations: []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr[int64](30)},
		{Key: "gpu", Operator: corev1.TolerationOpExists},
	}}
	addDaemonTolerations(&spec)
	want := append([]corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}, daemonTolerations...)
	sortTolerations := func(ts []corev1.Toleration) {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Key+string(ts[i].Effect) < ts[j].Key+string(ts[j].Effect) })
	}
	sortTolerations(want)
	sortTolerations(spec.Tolerations)
	if diff := cmp.Diff(want, spec.Tolerations); diff != "" {
		t.Errorf("tolerations (-want +got):\n%s", diff)
	}
}
