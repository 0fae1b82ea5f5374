package nodes_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/nodes"
)

func podStatus(t *testing.T, p *corev1.Pod, phase corev1.PodPhase) *api.PodStatus {
	t.Helper()
	data, err := json.Marshal(corev1.PodStatus{Phase: phase, PodIP: "10.42.0.5", HostIP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	return &api.PodStatus{Namespace: p.Namespace, Name: p.Name, Uid: string(p.UID), Status: data}
}

func TestUpdatePodStatus(t *testing.T) {
	testUpdatePodStatus(t, newEnv(t, envOptions{}))
}

func testUpdatePodStatus(t *testing.T, e *env) {
	c, _ := e.register("n1")
	mine := e.createPod("mine", "n1")
	theirs := e.createPod("theirs", "n2")
	unbound := e.createPod("unbound", "")
	stale := podStatus(t, mine, corev1.PodRunning)
	stale.Uid = "not-the-uid"
	badIP := podStatus(t, mine, corev1.PodRunning)
	badIP.Status = []byte(`{"phase":"Running","podIP":"not-an-ip"}`)
	resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Pods: []*api.PodStatus{
		podStatus(t, mine, corev1.PodRunning),
		podStatus(t, theirs, corev1.PodRunning),
		stale,
		{Namespace: "default", Name: "missing", Status: []byte(`{}`)},
		badIP,
		{Namespace: "default", Name: "mine", Status: []byte(`{"phase":`)},
		podStatus(t, unbound, corev1.PodRunning),
		{Namespace: "default", Name: "theirs", Status: []byte(`{}`)}, // no uid
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []codes.Code{codes.OK, codes.PermissionDenied, codes.NotFound, codes.NotFound,
		codes.InvalidArgument, codes.InvalidArgument, codes.PermissionDenied, codes.PermissionDenied}
	if len(resp.Pods) != len(want) {
		t.Fatalf("UpdateStatus returned %d pod results, want %d", len(resp.Pods), len(want))
	}
	for i, w := range want {
		if got := codes.Code(resp.Pods[i].Code); got != w {
			t.Errorf("pod result %d = %v %q, want %v", i, got, resp.Pods[i].Message, w)
		}
	}
	got, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.42.0.5" || got.Labels["app"] != "mine" {
		t.Errorf("pod after status update: phase %q podIP %q labels %v; want Running, 10.42.0.5, labels kept", got.Status.Phase, got.Status.PodIP, got.Labels)
	}
	other, err := e.admin.Pods("default").Get(ctxT(t), "theirs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if other.Status.Phase == corev1.PodRunning {
		t.Errorf("n1 changed the status of a pod bound to n2")
	}
}

// A batch larger than the items written at once gets every result in the
// order of its items.
func TestUpdatePodStatusLargeBatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	var req api.StatusUpdate
	var want []codes.Code
	for i := range 40 {
		if i%7 == 3 {
			req.Pods = append(req.Pods, &api.PodStatus{Namespace: "default", Name: fmt.Sprintf("missing-%d", i), Status: []byte(`{}`)})
			want = append(want, codes.NotFound)
			continue
		}
		p := e.createPod(fmt.Sprintf("p-%d", i), "n1")
		req.Pods = append(req.Pods, podStatus(t, p, corev1.PodRunning))
		want = append(want, codes.OK)
	}
	resp, err := c.UpdateStatus(ctxT(t), &req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Pods) != len(want) {
		t.Fatalf("UpdateStatus returned %d pod results, want %d", len(resp.Pods), len(want))
	}
	for i, w := range want {
		if got := codes.Code(resp.Pods[i].Code); got != w {
			t.Errorf("pod result %d (%s) = %v %q, want %v", i, req.Pods[i].Name, got, resp.Pods[i].Message, w)
		}
	}
	pods, err := e.admin.Pods("default").List(ctxT(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s phase = %q after the batch, want Running", p.Name, p.Status.Phase)
		}
	}
}

func TestPodTerminated(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	running := e.createPod("running", "n1")
	marked := e.createPod("marked", "n1")
	theirs := e.createPod("theirs", "n2")
	for _, name := range []string{"marked", "theirs"} {
		if err := e.admin.Pods("default").Delete(ctxT(t), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ref := func(p *corev1.Pod) *api.PodRef {
		return &api.PodRef{Namespace: p.Namespace, Name: p.Name, Uid: string(p.UID)}
	}
	resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Terminated: []*api.PodRef{
		ref(running), ref(marked), ref(theirs), {Namespace: "default", Name: "gone"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []codes.Code{codes.FailedPrecondition, codes.OK, codes.PermissionDenied, codes.OK}
	for i, w := range want {
		if got := codes.Code(resp.Terminated[i].Code); got != w {
			t.Errorf("terminated result %d = %v %q, want %v", i, got, resp.Terminated[i].Message, w)
		}
	}
	for name, wantExists := range map[string]bool{"running": true, "marked": false, "theirs": true} {
		_, err := e.admin.Pods("default").Get(ctxT(t), name, metav1.GetOptions{})
		if exists := !apierrors.IsNotFound(err); exists != wantExists {
			t.Errorf("pod %q exists = %v (Get = %v), want %v", name, exists, err, wantExists)
		}
	}
}

// A deleted pod that a finalizer keeps gets a terminal phase once its
// node has stopped it, so that a Job counts it as failed.
func TestPodTerminatedKeptByFinalizer(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	pods := e.admin.Pods("default")
	kept := e.createPod("kept", "n1")
	kept.Finalizers = []string{"example.com/keep"}
	kept, err := pods.Update(ctxT(t), kept, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept.Status.Phase = corev1.PodRunning
	if _, err := pods.UpdateStatus(ctxT(t), kept, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctxT(t), "kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Terminated: []*api.PodRef{
		{Namespace: "default", Name: "kept", Uid: string(kept.UID)},
	}})
	if err != nil || codes.Code(resp.Terminated[0].Code) != codes.OK {
		t.Fatalf("UpdateStatus = %v, %v", resp, err)
	}
	got, err := pods.Get(ctxT(t), "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod kept by its finalizer: %v", err)
	}
	if got.Status.Phase != corev1.PodFailed || got.DeletionTimestamp == nil {
		t.Errorf("pod phase %q deletionTimestamp %v, want Failed and set", got.Status.Phase, got.DeletionTimestamp)
	}
	got.Finalizers = nil
	if _, err := pods.Update(ctxT(t), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func readyOf(t *testing.T, e *env, node string) (corev1.ConditionStatus, string, *corev1.Node) {
	t.Helper()
	n, err := e.admin.Nodes().Get(ctxT(t), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status, c.Reason, n
		}
	}
	return "", "", n
}

func TestNodeReportAndHeartbeats(t *testing.T) {
	grace := 500 * time.Millisecond
	e := newEnv(t, envOptions{grace: grace})
	c, cfg := e.register("n1")
	st, err := json.Marshal(corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}},
		Capacity:  corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceCPU: resource.MustParse("2")},
		NodeInfo:  corev1.NodeSystemInfo{OperatingSystem: "linux", KernelVersion: "6.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{Status: st, Labels: map[string]string{"kubernetes.io/hostname": "n1"}}})
	if err != nil || resp.Node.Code != 0 {
		t.Fatalf("UpdateStatus(node report) = %v, %v", resp, err)
	}
	ready, reason, n := readyOf(t, e, "n1")
	if ready != corev1.ConditionTrue || reason != "KubeletReady" || n.Spec.PodCIDR != cfg.PodCidr ||
		n.Labels["kubernetes.io/hostname"] != "n1" || n.Status.Allocatable.Pods().Value() != 110 {
		t.Fatalf("node after report: ready %q %q, podCIDR %q (want %q), labels %v, allocatable %v",
			ready, reason, n.Spec.PodCIDR, cfg.PodCidr, n.Labels, n.Status.Allocatable)
	}

	beat := func(ready bool) {
		t.Helper()
		if _, err := c.Heartbeat(ctxT(t), &api.HeartbeatRequest{Ready: ready}); err != nil {
			t.Fatalf("Heartbeat(%v) = %v", ready, err)
		}
	}
	rv := n.ResourceVersion
	for range 3 {
		beat(true)
	}
	if _, _, n := readyOf(t, e, "n1"); n.ResourceVersion != rv {
		t.Errorf("heartbeats without a readiness change wrote the Node (resourceVersion %s → %s)", rv, n.ResourceVersion)
	}
	if _, ok := e.svc.LastHeartbeat("n1"); !ok {
		t.Error("LastHeartbeat(n1) unknown after heartbeats")
	}
	beat(false)
	ready, _, n = readyOf(t, e, "n1")
	if ready != corev1.ConditionFalse || n.ResourceVersion == rv {
		t.Fatalf("after a not-ready heartbeat: Ready=%s (resourceVersion %s), want False written", ready, n.ResourceVersion)
	}
	rv = n.ResourceVersion
	beat(false)
	if _, _, n := readyOf(t, e, "n1"); n.ResourceVersion != rv {
		t.Errorf("a second not-ready heartbeat wrote the Node again")
	}
	beat(true)

	// Silence: Ready=Unknown after the grace period.
	deadline := time.Now().Add(testTimeout)
	for {
		ready, reason, _ := readyOf(t, e, "n1")
		if ready == corev1.ConditionUnknown && reason == "NodeStatusUnknown" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready=%s after %v of silence, want Unknown", ready, testTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	beat(true)
	if ready, _, _ := readyOf(t, e, "n1"); ready != corev1.ConditionTrue {
		t.Errorf("after a heartbeat following silence: Ready=%s, want True", ready)
	}
}

func TestNodeMayCreateOnlyItself(t *testing.T) {
	e := newEnv(t, envOptions{})
	n1 := e.client(nodeUserT("n1"))
	_, err := n1.Nodes().Create(ctxT(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("n1 creating Node n2 = %v, want Forbidden", err)
	}
	if _, err := n1.Nodes().Create(ctxT(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("n1 creating Node n1 = %v", err)
	}
}

// A status write replaces the whole status (fields the node no longer
// reports are cleared) and leaves the pod's metadata and spec as stored.
func TestUpdatePodStatusReplacesStatusOnly(t *testing.T) {
	testUpdatePodStatusReplacesStatusOnly(t, newEnv(t, envOptions{}))
}

func testUpdatePodStatusReplacesStatusOnly(t *testing.T, e *env) {
	c, _ := e.register("n1")
	pod := e.createPod("mine", "n1")
	pod.Annotations = map[string]string{"a": "1"}
	pod, err := e.admin.Pods("default").Update(ctxT(t), pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []corev1.PodStatus{
		{Phase: corev1.PodPending, Message: "pulling", Reason: "Waiting", PodIP: "10.42.0.5"},
		{Phase: corev1.PodRunning, PodIP: "10.42.0.6"},
	} {
		data, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Pods: []*api.PodStatus{
			{Namespace: pod.Namespace, Name: pod.Name, Uid: string(pod.UID), Status: data},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if code := codes.Code(resp.Pods[0].Code); code != codes.OK {
			t.Fatalf("status %s: result %v %q", st.Phase, code, resp.Pods[0].Message)
		}
	}
	got, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.42.0.6" || got.Status.Message != "" || got.Status.Reason != "" {
		t.Errorf("status = phase %q podIP %q message %q reason %q; want Running, 10.42.0.6 and no message or reason",
			got.Status.Phase, got.Status.PodIP, got.Status.Message, got.Status.Reason)
	}
	if got.Labels["app"] != "mine" || got.Annotations["a"] != "1" || got.Spec.NodeName != "n1" || got.UID != pod.UID {
		t.Errorf("pod after status writes: labels %v annotations %v nodeName %q uid %s; want them kept", got.Labels, got.Annotations, got.Spec.NodeName, got.UID)
	}
}

// The server marks a silent node Unknown without claiming to have heard
// from it: the condition keeps the node's last heartbeat time.
func TestUnknownKeepsLastHeartbeatTime(t *testing.T) {
	var offset atomic.Int64 // added to the service's clock
	e := newEnv(t, envOptions{grace: 200 * time.Millisecond, configure: func(c *nodes.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}})
	c, _ := e.register("n1")
	st, _ := json.Marshal(corev1.NodeStatus{})
	if _, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{Status: st}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctxT(t), &api.HeartbeatRequest{Ready: true}); err != nil {
		t.Fatal(err)
	}
	heard := func(n *corev1.Node) metav1.Time {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.LastHeartbeatTime
			}
		}
		return metav1.Time{}
	}
	ready, _, n := readyOf(t, e, "n1")
	if ready != corev1.ConditionTrue {
		t.Fatalf("Ready=%s after a heartbeat, want True", ready)
	}
	last := heard(n)
	offset.Store(int64(time.Hour)) // an hour of silence
	deadline := time.Now().Add(testTimeout)
	for {
		ready, _, n := readyOf(t, e, "n1")
		if ready == corev1.ConditionUnknown {
			if got := heard(n); !got.Equal(&last) {
				t.Errorf("Unknown condition's lastHeartbeatTime = %v, want the node's last heartbeat %v", got, last)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready=%s after an hour of silence, want Unknown", ready)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUpdatePodStatusProtobuf(t *testing.T) {
	testUpdatePodStatusProtobuf(t, newEnv(t, envOptions{}))
}

// A status in protobuf is read instead of the JSON one; a malformed one
// is refused naming the field.
func testUpdatePodStatusProtobuf(t *testing.T, e *env) {
	c, _ := e.register("n1")
	mine := e.createPod("mine", "n1")
	pb, err := (&corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.9", HostIP: "192.0.2.1"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Pods: []*api.PodStatus{
		{Namespace: "default", Name: "mine", Uid: string(mine.UID), StatusProtobuf: []byte{0xff, 0xff}},
		{Namespace: "default", Name: "mine", Uid: string(mine.UID), StatusProtobuf: pb, Status: []byte(`{"phase":"Failed"}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := codes.Code(resp.Pods[0].Code); got != codes.InvalidArgument || !strings.Contains(resp.Pods[0].Message, "status_protobuf") {
		t.Errorf("malformed status_protobuf: %v %q, want InvalidArgument naming status_protobuf", got, resp.Pods[0].Message)
	}
	if got := codes.Code(resp.Pods[1].Code); got != codes.OK {
		t.Fatalf("status_protobuf: %v %q, want OK", got, resp.Pods[1].Message)
	}
	got, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.42.0.9" {
		t.Errorf("pod status after a protobuf report: phase %q podIP %q, want Running 10.42.0.9", got.Status.Phase, got.Status.PodIP)
	}
}

// Extended resources others advertise on a Node (as the e2e framework
// does with a status patch) survive the node's next report, which
// replaces the rest of its status.
func TestNodeReportKeepsExtendedResources(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	report := func(cpu string) {
		t.Helper()
		st, err := json.Marshal(corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)},
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.UpdateStatus(ctxT(t), &api.StatusUpdate{Node: &api.NodeReport{Status: st, Labels: map[string]string{"kubernetes.io/hostname": "n1"}}})
		if err != nil || resp.Node.Code != 0 {
			t.Fatalf("UpdateStatus(node report) = %v, %v", resp, err)
		}
	}
	report("2")
	n, err := e.admin.Nodes().Get(ctxT(t), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foo := corev1.ResourceName("example.com/foo")
	n.Status.Capacity[foo] = resource.MustParse("5")
	n.Status.Allocatable[foo] = resource.MustParse("5")
	n.Status.Capacity["hugepages-2Mi"] = resource.MustParse("2Mi")
	if _, err := e.admin.Nodes().UpdateStatus(ctxT(t), n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("advertise example.com/foo: %v", err)
	}
	report("4")
	if n, err = e.admin.Nodes().Get(ctxT(t), "n1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	capFoo, alloc := n.Status.Capacity[foo], n.Status.Allocatable[foo]
	if capFoo.Value() != 5 || alloc.Value() != 5 {
		t.Errorf("example.com/foo after a report: capacity %v, allocatable %v; want 5 and 5", n.Status.Capacity, n.Status.Allocatable)
	}
	if cpu := n.Status.Capacity.Cpu(); cpu.Value() != 4 {
		t.Errorf("cpu after a report = %v, want the reported 4", cpu)
	}
	if _, ok := n.Status.Capacity["hugepages-2Mi"]; ok {
		t.Errorf("hugepages-2Mi kept after a report that leaves it out, want it dropped (the node reports its own)")
	}
}
