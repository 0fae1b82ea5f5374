package nodes_test

import (
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
)

// Batches sent on one Report stream are applied like UpdateStatus calls
// and answered in order, each with its seq.
func TestReport(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	mine := e.createPod("mine", "n1")
	theirs := e.createPod("theirs", "n2")
	stream, err := c.Report(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(req *api.StatusUpdate) *api.StatusUpdateResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Seq != req.Seq {
			t.Fatalf("response seq = %d, want %d", resp.Seq, req.Seq)
		}
		return resp
	}

	resp := exchange(&api.StatusUpdate{Seq: 7, Pods: []*api.PodStatus{
		podStatus(t, mine, corev1.PodRunning), podStatus(t, theirs, corev1.PodRunning),
	}})
	if len(resp.Pods) != 2 || codes.Code(resp.Pods[0].Code) != codes.OK || codes.Code(resp.Pods[1].Code) != codes.PermissionDenied {
		t.Fatalf("first batch's results = %v, want OK and PermissionDenied", resp.Pods)
	}
	got, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodRunning {
		t.Errorf("pod phase after the first batch = %q, want Running", got.Status.Phase)
	}

	if err := e.admin.Pods("default").Delete(ctxT(t), "mine", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	resp = exchange(&api.StatusUpdate{Seq: 8, Terminated: []*api.PodRef{{Namespace: "default", Name: "mine", Uid: string(mine.UID)}}})
	if len(resp.Terminated) != 1 || resp.Terminated[0].Code != 0 {
		t.Fatalf("second batch's results = %v, want one OK", resp.Terminated)
	}
	if _, err := e.admin.Pods("default").Get(ctxT(t), "mine", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("terminated pod: Get = %v, want NotFound", err)
	}

	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after CloseSend = %v, want io.EOF", err)
	}
}

func TestReportUnauthenticated(t *testing.T) {
	e := newEnv(t, envOptions{})
	stream, err := e.dial(nil).Report(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); codeOf(err) != codes.Unauthenticated {
		t.Errorf("Report without a certificate = %v, want Unauthenticated", err)
	}
}

// A stopping service ends an idle Report stream instead of waiting for
// the node's next batch.
func TestReportEndsWhenServiceStops(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	stream, err := c.Report(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&api.StatusUpdate{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	e.stop()
	if _, err := stream.Recv(); codeOf(err) != codes.Unavailable {
		t.Errorf("Recv once the service stopped = %v, want Unavailable", err)
	}
}
