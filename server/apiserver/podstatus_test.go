package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

func nodeUser(node string) auth.User {
	return auth.User{Name: auth.NodeUserPrefix + node, Groups: []string{auth.GroupNodes}}
}

// withNodeAuthorizer makes ts decide as minik's server does: node rules,
// with pods/status writes confined to the node's pods.
func withNodeAuthorizer(ts *testServer) {
	ts.cfg.Authorizer = &auth.Authorizer{Pods: auth.PodNodeFunc(ts.PodNode)}
}

// boundPod creates pod name in namespace default bound to node.
func (ts *testServer) boundPod(t *testing.T, name, node string) *corev1.Pod {
	t.Helper()
	p := testPod(name, map[string]string{"app": name})
	p.Spec.NodeName = node
	out, err := ts.client.CoreV1().Pods("default").Create(testContext(t), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	return out
}

func TestUpdatePodStatus(t *testing.T) {
	ts := newTestServer(t)
	withNodeAuthorizer(ts)
	mine := ts.boundPod(t, "mine", "n1")
	theirs := ts.boundPod(t, "theirs", "n2")
	unbound := ts.boundPod(t, "unbound", "")
	gone := ts.boundPod(t, "gone", "n1")
	zero := int64(0)
	if err := ts.client.CoreV1().Pods("default").Delete(testContext(t), "gone", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	running := corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5", HostIP: "192.0.2.1"}
	tests := []struct {
		name   string
		user   auth.User
		pod    string
		uid    types.UID
		status corev1.PodStatus
		want   func(error) bool // nil: success
		field  string           // for Invalid: a field the causes name
	}{
		{name: "own pod", user: nodeUser("n1"), pod: "mine", uid: mine.UID, status: running},
		{name: "own pod without uid", user: nodeUser("n1"), pod: "mine", status: running},
		{name: "another node's pod", user: nodeUser("n1"), pod: "theirs", uid: theirs.UID, status: running, want: apierrors.IsForbidden},
		{name: "unbound pod", user: nodeUser("n1"), pod: "unbound", uid: unbound.UID, status: running, want: apierrors.IsForbidden},
		{name: "deleted pod", user: nodeUser("n1"), pod: "gone", uid: gone.UID, status: running, want: apierrors.IsForbidden},
		{name: "deleted pod as admin", user: auth.AdminUser, pod: "gone", uid: gone.UID, status: running, want: apierrors.IsNotFound},
		{name: "other uid", user: nodeUser("n1"), pod: "mine", uid: "another-uid", status: running, want: apierrors.IsConflict},
		{name: "bad pod IP", user: nodeUser("n1"), pod: "mine", uid: mine.UID,
			status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "not-an-ip"}, want: apierrors.IsInvalid, field: "status.podIP"},
		{name: "unknown container", user: nodeUser("n1"), pod: "mine", uid: mine.UID,
			status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "nope"}}}, want: apierrors.IsInvalid, field: "status.containerStatuses[0].name"},
		{name: "admin writes any pod", user: auth.AdminUser, pod: "theirs", uid: theirs.UID, status: running},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev, err := ts.UpdatePodStatus(testContext(t), tc.user, "default", tc.pod, tc.uid, &tc.status)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("UpdatePodStatus(%s) = %v, want success", tc.pod, err)
				}
				got, err := ts.client.CoreV1().Pods("default").Get(testContext(t), tc.pod, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if want := got.ResourceVersion; rev != 0 && strconv.FormatInt(rev, 10) != want {
					t.Errorf("UpdatePodStatus(%s) revision = %d, want the pod's resourceVersion %s", tc.pod, rev, want)
				}
				if got.Status.Phase != tc.status.Phase || got.Status.PodIP != tc.status.PodIP || got.Labels["app"] != tc.pod {
					t.Errorf("pod after UpdatePodStatus: phase %q podIP %q labels %v; want %q, %q, labels kept",
						got.Status.Phase, got.Status.PodIP, got.Labels, tc.status.Phase, tc.status.PodIP)
				}
				return
			}
			var se *apierrors.StatusError
			if !tc.want(err) || !errors.As(err, &se) {
				t.Fatalf("UpdatePodStatus(%s) = %v (%T), want a StatusError passing %s", tc.pod, err, err, tc.name)
			}
			if tc.field != "" && !strings.Contains(statusFields(err), tc.field) {
				t.Errorf("UpdatePodStatus(%s) causes name fields %q, want %q", tc.pod, statusFields(err), tc.field)
			}
		})
	}
}

func statusFields(err error) string {
	s, ok := err.(apierrors.APIStatus)
	if !ok || s.Status().Details == nil {
		return ""
	}
	var out []string
	for _, c := range s.Status().Details.Causes {
		out = append(out, c.Field)
	}
	return strings.Join(out, ",")
}

// A status written in process is stored as the same bytes as the same
// status written by a JSON patch of pods/NAME/status, so watchers see no
// difference; the spec and metadata stay as stored.
func TestUpdatePodStatusStoresAsPatch(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pod := ts.boundPod(t, "p", "n1")
	st := corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "10.42.0.5", HostIP: "192.0.2.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true, Image: "busybox:1.36",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now().Rfc3339Copy()}}}},
	}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := json.Marshal(pod.UID)
	patch := `[{"op":"test","path":"/metadata/uid","value":` + string(uid) + `},{"op":"replace","path":"/status","value":` + string(raw) + `}]`
	if _, err := ts.client.CoreV1().Pods("default").Patch(ctx, "p", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("Patch(status) = %v", err)
	}
	key := "/registry/pods/default/p"
	patched, err := ts.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	// Another status in between, so that the second write is a change.
	if _, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", pod.UID, &corev1.PodStatus{Phase: corev1.PodPending}); err != nil {
		t.Fatalf("UpdatePodStatus(Pending) = %v", err)
	}
	if _, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", pod.UID, &st); err != nil {
		t.Fatalf("UpdatePodStatus(Running) = %v", err)
	}
	direct, err := ts.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if direct.ModRevision == patched.ModRevision {
		t.Fatalf("the in-process writes did not change the stored pod (revision %d)", direct.ModRevision)
	}
	if !bytes.Equal(direct.Value, patched.Value) {
		t.Errorf("stored after UpdatePodStatus:\n%s\nafter the JSON patch:\n%s", direct.Value, patched.Value)
	}
}

// newNodePodServer returns a server on st, with the node authorizer, that
// holds pod default/p bound to node n1, and the pod's UID.
func newNodePodServer(t *testing.T, st store.Store) (*Server, types.UID) {
	t.Helper()
	ctx := testContext(t)
	s, err := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Authorizer = &auth.Authorizer{Pods: auth.PodNodeFunc(s.PodNode)}
	if err := s.EnsureNamespaces(ctx); err != nil {
		t.Fatal(err)
	}
	pod := testPod("p", nil)
	pod.Namespace, pod.Spec.NodeName = "default", "n1"
	created, _, err := s.createObject(ctx, podsResource, pod, false)
	if err != nil {
		t.Fatal(err)
	}
	return s, created.(*corev1.Pod).UID
}

// racingStore lets another writer change key just before the first
// Update of it, which then fails with a conflict.
type racingStore struct {
	store.Store
	key     string
	race    func(ctx context.Context) error
	raced   atomic.Bool
	updates atomic.Int32 // Updates of key, including the racing one
	err     error        // the race's error
}

func (r *racingStore) Update(ctx context.Context, key string, value []byte, rev int64) (int64, error) {
	if key == r.key {
		r.updates.Add(1)
		if r.raced.CompareAndSwap(false, true) {
			r.err = r.race(ctx)
		}
	}
	return r.Store.Update(ctx, key, value, rev)
}

// A write that another write overtakes is retried on the new revision and
// keeps the other write's change.
func TestUpdatePodStatusRetriesConflict(t *testing.T) {
	ctx := testContext(t)
	rs := &racingStore{Store: storetest.New(t), key: "/registry/pods/default/p"}
	s, uid := newNodePodServer(t, rs)
	// The racing write is another caller's: it runs on a context of its
	// own, not on the one the store was handed for the status write.
	rs.race = func(context.Context) error {
		_, err := s.updateObject(ctx, podsResource, "default", "p", updateMain, false, func(cur kruntime.Object) (kruntime.Object, error) {
			cur.(*corev1.Pod).Labels = map[string]string{"raced": "yes"}
			return cur, nil
		})
		return err
	}
	if _, err := s.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", uid, &corev1.PodStatus{Phase: corev1.PodRunning}); err != nil {
		t.Fatalf("UpdatePodStatus = %v", err)
	}
	if rs.err != nil {
		t.Fatalf("racing write: %v", rs.err)
	}
	if n := rs.updates.Load(); n != 3 {
		t.Errorf("store Updates of the pod = %d, want 3 (racing write, conflict, retry)", n)
	}
	obj, _, err := s.getObject(ctx, podsResource, "default", "p")
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*corev1.Pod)
	if got.Status.Phase != corev1.PodRunning || got.Labels["raced"] != "yes" {
		t.Errorf("pod after the retried write: phase %q labels %v; want Running and the racing label", got.Status.Phase, got.Labels)
	}
}

// In-process status writes count in the request metrics as patches of
// pods, with the code the REST API would have answered.
func TestUpdatePodStatusMetrics(t *testing.T) {
	ts := newTestServer(t)
	withNodeAuthorizer(ts)
	ts.metrics = NewMetrics()
	mine := ts.boundPod(t, "mine", "n1")
	ctx := testContext(t)
	running := &corev1.PodStatus{Phase: corev1.PodRunning}
	if _, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "mine", mine.UID, running); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.UpdatePodStatus(ctx, nodeUser("n2"), "default", "mine", mine.UID, running); !apierrors.IsForbidden(err) {
		t.Fatalf("UpdatePodStatus by n2 = %v, want Forbidden", err)
	}
	ts.checkMetrics(t,
		`apiserver_request_total{code="200",resource="pods",verb="patch"} 1`,
		`apiserver_request_total{code="403",resource="pods",verb="patch"} 1`,
		`apiserver_request_duration_seconds_count{resource="pods",verb="patch"} 2`,
	)
}

// BenchmarkPodStatus writes pod statuses as their node from 16 goroutines,
// in process and, as nodes did before, as a JSON patch over the loopback,
// and reports the process CPU time per write.
func BenchmarkPodStatus(b *testing.B) {
	for _, path := range []string{"in process", "loopback patch"} {
		b.Run(path, func(b *testing.B) {
			_, s := benchServer(b)
			s.cfg.Authorizer = &auth.Authorizer{Pods: auth.PodNodeFunc(s.PodNode)}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s.ServeLoopback(ctx)
			pods := corev1client.NewForConfigOrDie(s.LoopbackConfig(nodeUser("n1"))).Pods("default")
			write := func(name string, uid types.UID, st *corev1.PodStatus) error {
				if path == "in process" {
					_, err := s.UpdatePodStatus(ctx, nodeUser("n1"), "default", name, uid, st)
					return err
				}
				return patchStatus(ctx, pods, name, uid, st)
			}
			benchPodStatus(b, s, write)
		})
	}
}

func benchPodStatus(b *testing.B, s *Server, write func(name string, uid types.UID, st *corev1.PodStatus) error) {
	const goroutines = 16
	uids := make([]types.UID, goroutines)
	for i := range uids {
		pod := testPod("p"+strconv.Itoa(i), nil)
		pod.Namespace, pod.Spec.NodeName = "default", "n1"
		obj, _, err := s.createObject(context.Background(), podsResource, pod, false)
		if err != nil {
			b.Fatal(err)
		}
		uids[i] = obj.(*corev1.Pod).UID
	}
	statuses := []corev1.PodStatus{
		{Phase: corev1.PodPending, HostIP: "192.0.2.1", Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
		{Phase: corev1.PodRunning, HostIP: "192.0.2.1", PodIP: "10.42.0.5", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	var next atomic.Int32
	b.SetParallelism(goroutines / runtime.GOMAXPROCS(0))
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % goroutines
		for n := 0; pb.Next(); n++ {
			if err := write("p"+strconv.Itoa(i), uids[i], &statuses[n%2]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// patchStatus is the status write nodes made before UpdatePodStatus: a JSON
// patch that tests the UID and replaces the status.
func patchStatus(ctx context.Context, pods corev1client.PodInterface, name string, uid types.UID, st *corev1.PodStatus) error {
	quoted, _ := json.Marshal(uid)
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	patch := `[{"op":"test","path":"/metadata/uid","value":` + string(quoted) + `},{"op":"replace","path":"/status","value":` + string(raw) + `}]`
	_, err = pods.Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}, "status")
	return err
}

// processCPU is the CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A write that changes the status returns its revision; one that changes
// nothing returns 0, not the revision of whatever wrote the pod last.
func TestUpdatePodStatusRevision(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	created, err := ts.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := &corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.4"}
	rev, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", created.UID, st)
	if err != nil || rev == 0 {
		t.Fatalf("UpdatePodStatus(Running) = %d, %v; want a revision", rev, err)
	}
	// Someone else changes the pod; the node then reports what is stored.
	cur, err := ts.client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels = map[string]string{"by": "admin"}
	if _, err := ts.client.CoreV1().Pods("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", created.UID, st)
	if err != nil || again != 0 {
		t.Errorf("UpdatePodStatus of the stored status = %d, %v; want 0 (nothing written)", again, err)
	}
}

// countingStore counts the Gets of one key.
type countingStore struct {
	store.Store
	key  string
	gets atomic.Int32
}

func (c *countingStore) Get(ctx context.Context, key string) (store.KV, error) {
	if key == c.key {
		c.gets.Add(1)
	}
	return c.Store.Get(ctx, key)
}

// A node's status write reads its pod once: the authorizer asks about
// the pod the write read, not the store again.
func TestUpdatePodStatusReadsThePodOnce(t *testing.T) {
	ctx := testContext(t)
	cs := &countingStore{Store: storetest.New(t), key: "/registry/pods/default/p"}
	s, uid := newNodePodServer(t, cs)
	before := cs.gets.Load()
	if _, err := s.UpdatePodStatus(ctx, nodeUser("n1"), "default", "p", uid, &corev1.PodStatus{Phase: corev1.PodRunning}); err != nil {
		t.Fatalf("UpdatePodStatus = %v", err)
	}
	if n := cs.gets.Load() - before; n != 1 {
		t.Errorf("UpdatePodStatus read the pod %d times, want 1", n)
	}
	if _, err := s.UpdatePodStatus(ctx, nodeUser("n2"), "default", "p", uid, &corev1.PodStatus{Phase: corev1.PodRunning}); !apierrors.IsForbidden(err) {
		t.Errorf("UpdatePodStatus by another node = %v, want Forbidden", err)
	}
}

// A node's write whose context has ended answers the context's error,
// not a refusal: nothing was decided about the node.
func TestUpdatePodStatusCancelled(t *testing.T) {
	ts := newTestServer(t)
	withNodeAuthorizer(ts)
	mine := ts.boundPod(t, "mine", "n1")
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	_, err := ts.UpdatePodStatus(ctx, nodeUser("n1"), "default", "mine", mine.UID, &corev1.PodStatus{Phase: corev1.PodRunning})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("UpdatePodStatus with an ended context = %v, want context.Canceled", err)
	}
}
