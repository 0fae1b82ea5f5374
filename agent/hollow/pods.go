package hollow

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
)

// apply brings the node's pods up to date with a session message.
func (n *node) apply(m *api.SessionMessage) error {
	complete, err := n.session.Check(m)
	if err != nil {
		return err
	}
	if complete {
		n.dropMissing(m.GetChanges())
	}
	for _, c := range m.GetChanges() {
		if c.GetKind() != api.ObjectKind_OBJECT_KIND_POD {
			continue
		}
		pod, err := decodePod(c.GetObject())
		if err != nil {
			n.lg.Warn("undecodable pod from the server", "pod", c.GetNamespace()+"/"+c.GetName(), "err", err)
			continue
		}
		if c.GetAction() == api.Change_DELETE {
			n.dropPod(pod)
		} else {
			n.putPod(pod)
		}
	}
	n.session.Applied(m)
	return nil
}

// decodePod decodes a session's pod into a Pod holding only the fields a
// hollow node reads, so that the many pods of a hollow cluster take little
// memory.
func decodePod(data []byte) (*corev1.Pod, error) {
	var f corev1.Pod
	if err := api.DecodeObject(data, &f); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: f.Name, Namespace: f.Namespace, UID: f.UID, DeletionTimestamp: f.DeletionTimestamp},
		Status:     corev1.PodStatus{Phase: f.Status.Phase, PodIP: f.Status.PodIP, QOSClass: f.Status.QOSClass},
	}
	for _, c := range f.Spec.Containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	return pod, nil
}

// dropMissing forgets the pods a complete set no longer holds.
func (n *node) dropMissing(changes []*api.Change) {
	keep := map[string]bool{}
	for _, c := range changes {
		if c.GetKind() == api.ObjectKind_OBJECT_KIND_POD {
			keep[c.GetNamespace()+"/"+c.GetName()] = true
		}
	}
	for uid, ps := range n.pods {
		if !keep[ps.key] {
			n.ips.release(ps.ip)
			delete(n.pods, uid)
			delete(n.statuses, ps.key)
			delete(n.terminated, ps.key)
		}
	}
}

// putPod "starts" a new pod (reports it Running) and reports a pod marked
// for deletion as terminated.
func (n *node) putPod(pod *corev1.Pod) {
	key := pod.Namespace + "/" + pod.Name
	if pod.DeletionTimestamp != nil {
		delete(n.statuses, key)
		n.terminated[key] = &api.PodRef{Namespace: pod.Namespace, Name: pod.Name, Uid: string(pod.UID)}
		return
	}
	if n.pods[pod.UID] != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return
	}
	ip, adopted := n.ipFor(pod)
	if !ip.IsValid() {
		n.lg.Warn("no pod IP left", "pod", key)
		return
	}
	n.pods[pod.UID] = &podState{key: key, ip: ip}
	if adopted && pod.Status.Phase == corev1.PodRunning {
		return // reported before a restart of this process
	}
	st := runningStatus(pod, ip, n.nodeIP, time.Now())
	data, err := st.Marshal()
	if err != nil {
		n.lg.Warn("encoding pod status", "pod", key, "err", err)
		return
	}
	n.statuses[key] = &api.PodStatus{Namespace: pod.Namespace, Name: pod.Name, Uid: string(pod.UID), StatusProtobuf: data}
}

// ipFor returns the pod's IP: the one it already has if it is free in
// this node's range (adopted), else a new one.
func (n *node) ipFor(pod *corev1.Pod) (ip netip.Addr, adopted bool) {
	if cur, err := netip.ParseAddr(pod.Status.PodIP); err == nil && n.ips.reserve(cur) {
		return cur, true
	}
	return n.ips.allocate(), false
}

func (n *node) dropPod(pod *corev1.Pod) {
	key := pod.Namespace + "/" + pod.Name
	delete(n.statuses, key)
	delete(n.terminated, key)
	if ps := n.pods[pod.UID]; ps != nil {
		n.ips.release(ps.ip)
		delete(n.pods, pod.UID)
	}
}

// runningStatus is the status of a pod whose containers all started at
// now.
func runningStatus(pod *corev1.Pod, ip, hostIP netip.Addr, now time.Time) corev1.PodStatus {
	t := metav1.NewTime(now.Truncate(time.Second))
	st := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    hostIP.String(),
		HostIPs:   []corev1.HostIP{{IP: hostIP.String()}},
		PodIP:     ip.String(),
		PodIPs:    []corev1.PodIP{{IP: ip.String()}},
		StartTime: &t,
		QOSClass:  pod.Status.QOSClass,
	}
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady} {
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: t})
	}
	started := true
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "hollow://" + c.Image,
			ContainerID: fmt.Sprintf("hollow://%s-%s", pod.UID, c.Name),
			Ready:       true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t}},
		})
	}
	return st
}

// flush sends the pending pod reports. Items the server could not apply
// for a passing reason stay pending; a failed call keeps them all.
func (n *node) flush(ctx context.Context) error {
	req := &api.StatusUpdate{}
	for _, s := range n.statuses {
		req.Pods = append(req.Pods, s)
	}
	for _, t := range n.terminated {
		req.Terminated = append(req.Terminated, t)
	}
	resp, err := n.reports.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("status update: %w", err)
	}
	for i, s := range req.Pods {
		if key := s.Namespace + "/" + s.Name; i >= len(resp.GetPods()) || !retryable(resp.GetPods()[i]) {
			delete(n.statuses, key)
		}
	}
	for i, t := range req.Terminated {
		if key := t.Namespace + "/" + t.Name; i >= len(resp.GetTerminated()) || !retryable(resp.GetTerminated()[i]) {
			delete(n.terminated, key)
		}
	}
	return nil
}

// retryable reports whether an item failed for a reason that may pass.
func retryable(res *api.Result) bool {
	switch codes.Code(res.GetCode()) {
	case codes.OK, codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument:
		return false
	}
	return true
}
