package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/api"
)

// maxConflictRetries bounds the read-modify-write retries of one item.
const maxConflictRetries = 5

// maxParallelItems bounds how many items of one status update are written
// at once. Items are independent; writing them together lets the store
// commit them in one group instead of one fsync after another.
const maxParallelItems = 16

// UpdateStatus applies a batch of pod statuses, terminated pods and the
// node's report, each on its own.
func (s *Service) UpdateStatus(ctx context.Context, req *api.StatusUpdate) (*api.StatusUpdateResponse, error) {
	node, err := callerNode(ctx)
	if err != nil {
		return nil, err
	}
	resp := &api.StatusUpdateResponse{}
	if rep := req.GetNode(); rep != nil {
		resp.Node = result(s.reportNode(ctx, node, rep))
	}
	pods, terminated := req.GetPods(), req.GetTerminated()
	resp.Pods = make([]*api.Result, len(pods))
	resp.Terminated = make([]*api.Result, len(terminated))
	// A lone item, the usual report, is written on the call's goroutine:
	// a new one would have to grow its stack for the write again.
	switch {
	case len(pods) == 1 && len(terminated) == 0:
		resp.Pods[0] = result(s.podStatus(ctx, node, pods[0]))
		return resp, nil
	case len(pods) == 0 && len(terminated) == 1:
		resp.Terminated[0] = result(s.podTerminated(ctx, node, terminated[0]))
		return resp, nil
	}
	var g errgroup.Group
	g.SetLimit(maxParallelItems)
	for i, ps := range pods {
		g.Go(func() error {
			resp.Pods[i] = result(s.podStatus(ctx, node, ps))
			return nil
		})
	}
	for i, ref := range terminated {
		g.Go(func() error {
			resp.Terminated[i] = result(s.podTerminated(ctx, node, ref))
			return nil
		})
	}
	g.Wait()
	return resp, nil
}

// Report serves UpdateStatus over a stream: each batch is applied, then
// answered with its seq, before the next one is taken. The stream ends
// when the agent closes it or the service stops.
func (s *Service) Report(stream api.Node_ReportServer) error {
	ctx := stream.Context()
	if _, err := callerNode(ctx); err != nil {
		return err
	}
	type received struct {
		req *api.StatusUpdate
		err error
	}
	// Recv blocks without regard to the service stopping, so it runs on
	// its own goroutine, which ends with the stream's context once the
	// handler returns.
	batches := make(chan received)
	go func() {
		for {
			req, err := stream.Recv()
			select {
			case batches <- received{req, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		var r received
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopped:
			return status.Error(codes.Unavailable, "server is shutting down")
		case r = <-batches:
		}
		if errors.Is(r.err, io.EOF) {
			return nil
		}
		if r.err != nil {
			return r.err
		}
		resp, err := s.UpdateStatus(ctx, r.req)
		if err != nil {
			return err
		}
		resp.Seq = r.req.GetSeq()
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func result(err error) *api.Result {
	if err == nil {
		return &api.Result{}
	}
	st := status.Convert(grpcError(err))
	return &api.Result{Code: uint32(st.Code()), Message: st.Message()}
}

// podStatus writes one pod's status as the node, so the API's node
// authorization decides. The API refuses a pod that is not the node's,
// gone or replaced alike (Forbidden or Conflict); reading the pod tells
// which.
func (s *Service) podStatus(ctx context.Context, node string, ps *api.PodStatus) error {
	st, err := decodePodStatus(ps)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "pod %s/%s: %v", ps.GetNamespace(), ps.GetName(), err)
	}
	rev, err := s.cfg.API.UpdatePodStatus(ctx, nodeUser(node), ps.GetNamespace(), ps.GetName(), types.UID(ps.GetUid()), &st)
	if err == nil {
		if rev > 0 {
			s.echoes.add(node, rev)
		}
		return nil
	}
	if ctx.Err() != nil || !apierrors.IsForbidden(err) && !apierrors.IsConflict(err) {
		return err
	}
	pod, gerr := s.client(nodeUser(node)).Pods(ps.GetNamespace()).Get(ctx, ps.GetName(), metav1.GetOptions{})
	if gerr != nil {
		return gerr
	}
	if cerr := checkPod(pod, node, ps); cerr != nil {
		return cerr
	}
	return err
}

// decodePodStatus returns the status a report carries: status_protobuf if
// set, else status. A report with neither carries an empty status (the
// protobuf encoding of one is empty).
func decodePodStatus(ps *api.PodStatus) (st corev1.PodStatus, err error) {
	if len(ps.GetStatusProtobuf()) == 0 && len(ps.GetStatus()) == 0 {
		return st, nil
	}
	if pb := ps.GetStatusProtobuf(); len(pb) > 0 {
		if err := st.Unmarshal(pb); err != nil {
			return st, fmt.Errorf("status_protobuf: %w", err)
		}
		return st, nil
	}
	if err := json.Unmarshal(ps.GetStatus(), &st); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

// checkPod tells whether pod is the one ps reports on (its UID, if ps
// names one) and is bound to node.
func checkPod(pod *corev1.Pod, node string, ps *api.PodStatus) error {
	if uid := types.UID(ps.GetUid()); uid != "" && pod.UID != uid {
		return status.Errorf(codes.NotFound, "pod %s/%s with uid %s is gone", ps.GetNamespace(), ps.GetName(), uid)
	}
	if pod.Spec.NodeName != node {
		return status.Errorf(codes.PermissionDenied, "pod %s/%s is bound to node %q, not %q", pod.Namespace, pod.Name, pod.Spec.NodeName, node)
	}
	return nil
}

// podTerminated removes a pod the node has stopped, if it is the node's and
// marked for deletion. Nodes may not delete pods through the API, so the
// service checks and deletes as itself.
func (s *Service) podTerminated(ctx context.Context, node string, ref *api.PodRef) error {
	pod, err := s.client(nodeUser(node)).Pods(ref.GetNamespace()).Get(ctx, ref.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case ref.GetUid() != "" && pod.UID != types.UID(ref.GetUid()):
		return nil // that pod is gone; another has its name
	case pod.Spec.NodeName != node:
		return status.Errorf(codes.PermissionDenied, "pod %s/%s is bound to node %q, not %q", pod.Namespace, pod.Name, pod.Spec.NodeName, node)
	case pod.DeletionTimestamp == nil:
		return status.Errorf(codes.FailedPrecondition, "pod %s/%s is not marked for deletion", pod.Namespace, pod.Name)
	}
	if err := s.finishDeleted(ctx, pod); err != nil {
		return err
	}
	zero := int64(0)
	err = s.client(ServiceUser).Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// finishDeleted gives a deleted pod that a finalizer keeps (a Job's
// tracking finalizer, say) the terminal phase its stopped containers
// leave it in, as the kubelet does: Succeeded when every container last
// exited 0, else Failed. A pod without finalizers goes at once and needs
// no such write.
func (s *Service) finishDeleted(ctx context.Context, pod *corev1.Pod) error {
	if len(pod.Finalizers) == 0 || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	out := pod.DeepCopy()
	out.Status.Phase = corev1.PodFailed
	if allSucceeded(out.Status.ContainerStatuses) {
		out.Status.Phase = corev1.PodSucceeded
	}
	for i := range out.Status.Conditions {
		if c := &out.Status.Conditions[i]; (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status == corev1.ConditionTrue {
			c.Status, c.LastTransitionTime = corev1.ConditionFalse, metav1.Now()
		}
	}
	_, err := s.client(ServiceUser).Pods(pod.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func allSucceeded(cs []corev1.ContainerStatus) bool {
	for _, c := range cs {
		if t := c.State.Terminated; t == nil || t.ExitCode != 0 {
			return false
		}
	}
	return len(cs) > 0
}

// reportNode creates or updates the node's Node from its report: its
// labels and status, with Ready=True, written as the node, so that the
// rules on what a node may write to its Node hold for what it reports;
// then its podCIDR, which only the server may set.
func (s *Service) reportNode(ctx context.Context, node string, rep *api.NodeReport) error {
	var st corev1.NodeStatus
	if len(rep.GetStatus()) > 0 {
		if err := json.Unmarshal(rep.GetStatus(), &st); err != nil {
			return status.Errorf(codes.InvalidArgument, "node status: %v", err)
		}
	}
	cidr, err := s.cidrs.allocate(ctx, node)
	if err != nil {
		return fmt.Errorf("podCIDR: %w", err)
	}
	nodes := s.client(nodeUser(node)).Nodes()
	for try := 0; ; try++ {
		cur, err := nodes.Get(ctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			// Claimed just before the Node is created, so that a sweep
			// of ranges without a Node keeps it (see sweep).
			if cidr, err = s.cidrs.claim(ctx, node); err != nil {
				return fmt.Errorf("podCIDR: %w", err)
			}
			n := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: node, Labels: maps.Clone(rep.GetLabels())},
				Status:     st,
			}
			setCondition(&n.Status, readyCondition(), s.cfg.Now())
			cur, err = nodes.Create(ctx, n, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) && try < maxConflictRetries {
				continue
			}
			if err != nil {
				return err
			}
			s.beats.setReady(node, corev1.ConditionTrue)
			s.lg.Info("node created", "node", node, "podCIDR", cidr)
			// A Node left without them gets them at the next report.
			_, err = s.setServerFields(ctx, cur, cidr.String())
			return err
		}
		if err != nil {
			return err
		}
		err = s.updateNode(ctx, cur, cidr.String(), rep.GetLabels(), st)
		if apierrors.IsConflict(err) && try < maxConflictRetries {
			continue
		}
		if err == nil {
			s.beats.setReady(node, corev1.ConditionTrue)
		}
		return err
	}
}

// setServerFields gives a Node what the server sets on it, writing as
// the service, since a node may not set them itself: the podCIDR the
// server allocated for it, if it has none, and the labels of the
// server's own node.
func (s *Service) setServerFields(ctx context.Context, cur *corev1.Node, cidr string) (*corev1.Node, error) {
	var labels map[string]string
	if cur.Name == s.cfg.ServerNode {
		labels = s.cfg.ServerNodeLabels
	}
	if cur.Spec.PodCIDR != "" && containsAll(cur.Labels, labels) {
		return cur, nil
	}
	n := cur.DeepCopy()
	if n.Spec.PodCIDR == "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	}
	if len(labels) > 0 && n.Labels == nil {
		n.Labels = map[string]string{}
	}
	maps.Copy(n.Labels, labels)
	return s.client(ServiceUser).Nodes().Update(ctx, n, metav1.UpdateOptions{})
}

// updateNode brings an existing Node up to date: the server's fields and
// the reported labels first (if they change), then the status.
func (s *Service) updateNode(ctx context.Context, cur *corev1.Node, cidr string, labels map[string]string, st corev1.NodeStatus) error {
	nodes := s.client(nodeUser(cur.Name)).Nodes()
	n, err := s.setServerFields(ctx, cur, cidr)
	if err != nil {
		return err
	}
	if !containsAll(n.Labels, labels) {
		n = n.DeepCopy()
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		maps.Copy(n.Labels, labels)
		if n, err = nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	n = n.DeepCopy()
	conds := n.Status.Conditions
	keepExtendedResources(&st, &n.Status)
	n.Status = st
	n.Status.Conditions = conds
	setCondition(&n.Status, readyCondition(), s.cfg.Now())
	_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// keepExtendedResources carries into a node's reported status the
// extended resources (example.com/foo) that others advertised on its Node
// and the node does not report itself, as the kubelet keeps them.
func keepExtendedResources(st *corev1.NodeStatus, cur *corev1.NodeStatus) {
	keep := func(dst *corev1.ResourceList, src corev1.ResourceList) {
		for name, q := range src {
			if !extendedResource(name) {
				continue
			}
			if _, ok := (*dst)[name]; ok {
				continue
			}
			if *dst == nil {
				*dst = corev1.ResourceList{}
			}
			(*dst)[name] = q
		}
	}
	keep(&st.Capacity, cur.Capacity)
	keep(&st.Allocatable, cur.Allocatable)
}

// extendedResource reports whether name is an extended resource: one
// outside the kubernetes.io namespaces, with a domain.
func extendedResource(name corev1.ResourceName) bool {
	domain, _, ok := strings.Cut(string(name), "/")
	return ok && domain != "kubernetes.io" && !strings.HasSuffix(domain, ".kubernetes.io")
}

// containsAll reports whether m holds every key of sub with its value.
func containsAll(m, sub map[string]string) bool {
	for k, v := range sub {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func readyCondition() corev1.NodeCondition {
	return corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "KubeletReady", Message: "minik agent is posting ready status",
	}
}
