package nodes_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
)

func TestReportEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	mine := e.createPod("mine", "n1")
	theirs := e.createPod("theirs", "n2")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second) // Events keep whole seconds
	backOff := func(p *corev1.Pod, count int32, last time.Time) *api.PodEvent {
		return &api.PodEvent{
			Namespace: p.Namespace, Name: p.Name, Uid: string(p.UID), FieldPath: "spec.containers{c}",
			Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container c in pod " + p.Name,
			Count: count, FirstSeenMs: t0.UnixMilli(), LastSeenMs: last.UnixMilli(),
		}
	}
	stale := backOff(mine, 1, t0)
	stale.Uid = "not-the-uid"
	badType := backOff(mine, 1, t0)
	badType.Type = "Critical"
	longPath := backOff(mine, 1, t0)
	longPath.FieldPath = "spec.containers{" + strings.Repeat("c", 1<<20) + "}"
	resp, err := c.ReportEvents(ctxT(t), &api.EventReport{Events: []*api.PodEvent{
		backOff(mine, 3, t0.Add(time.Second)),
		backOff(theirs, 1, t0),
		stale,
		{Namespace: "default", Name: "missing", Type: "Normal", Reason: "Started", Message: "Started container c"},
		badType,
		{Namespace: "default", Name: "mine", Uid: string(mine.UID), Type: "Normal", Reason: "Started", Message: strings.Repeat("x", 5000)},
		longPath,
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []codes.Code{codes.OK, codes.PermissionDenied, codes.NotFound, codes.NotFound, codes.InvalidArgument, codes.OK, codes.InvalidArgument}
	if len(resp.Events) != len(want) {
		t.Fatalf("ReportEvents returned %d results, want %d", len(resp.Events), len(want))
	}
	for i, w := range want {
		if got := codes.Code(resp.Events[i].Code); got != w {
			t.Errorf("event result %d = %v %q, want %v", i, got, resp.Events[i].Message, w)
		}
	}
	// A repeat adds to the Event it aggregates into.
	if _, err := c.ReportEvents(ctxT(t), &api.EventReport{Events: []*api.PodEvent{backOff(mine, 2, t0.Add(time.Minute))}}); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(testTimeout)
	for {
		err := checkReportedEvents(e, mine, t0)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkReportedEvents(e *env, mine *corev1.Pod, t0 time.Time) error {
	list, err := e.admin.Events("default").List(ctxT(e.t), metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(list.Items) != 2 {
		return fmt.Errorf("%d events, want 2 (BackOff aggregated, Started)", len(list.Items))
	}
	for _, ev := range list.Items {
		o := ev.InvolvedObject
		if o.Kind != "Pod" || o.Name != "mine" || o.UID != mine.UID {
			return fmt.Errorf("event %s about %+v, want pod mine", ev.Name, o)
		}
		if ev.Source.Component != "kubelet" || ev.Source.Host != "n1" {
			return fmt.Errorf("event %s source %+v, want kubelet on n1", ev.Name, ev.Source)
		}
		switch ev.Reason {
		case "BackOff":
			if ev.Count != 5 || o.FieldPath != "spec.containers{c}" || ev.Type != "Warning" {
				return fmt.Errorf("BackOff: count %d fieldPath %q type %s; want 5, spec.containers{c}, Warning", ev.Count, o.FieldPath, ev.Type)
			}
			if !ev.FirstTimestamp.Time.Equal(t0) || !ev.LastTimestamp.Time.Equal(t0.Add(time.Minute)) {
				return fmt.Errorf("BackOff seen %v..%v, want %v..%v", ev.FirstTimestamp, ev.LastTimestamp, t0, t0.Add(time.Minute))
			}
		case "Started":
			if len(ev.Message) != 1024 || ev.Count != 1 {
				return fmt.Errorf("Started: message of %d bytes, count %d; want 1024 and 1", len(ev.Message), ev.Count)
			}
		default:
			return fmt.Errorf("unexpected event %s %s", ev.Reason, ev.Message)
		}
	}
	return nil
}

// A node whose clock runs ahead does not stamp events in the server's
// future (where the event TTL would never reach them).
func TestReportEventsClockAhead(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	p := e.createPod("ahead", "n1")
	ahead := time.Now().AddDate(1, 0, 0)
	resp, err := c.ReportEvents(ctxT(t), &api.EventReport{Events: []*api.PodEvent{{
		Namespace: p.Namespace, Name: p.Name, Uid: string(p.UID), Type: "Normal", Reason: "Started",
		Message: "Started container c", FirstSeenMs: ahead.UnixMilli(), LastSeenMs: ahead.Add(time.Minute).UnixMilli(),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if code := codes.Code(resp.Events[0].Code); code != codes.OK {
		t.Fatalf("ReportEvents = %v %q, want OK", code, resp.Events[0].Message)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		list, err := e.admin.Events("default").List(ctxT(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 1 {
			ev := list.Items[0]
			limit := time.Now().Add(time.Second)
			if ev.FirstTimestamp.After(limit) || ev.LastTimestamp.After(limit) || ev.LastTimestamp.Before(&ev.FirstTimestamp) {
				t.Fatalf("event seen %v..%v, want times no later than the server's clock", ev.FirstTimestamp, ev.LastTimestamp)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events, want 1", len(list.Items))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Only a node may report events, and only so many at once.
func TestReportEventsLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.dial(nil).ReportEvents(ctxT(t), &api.EventReport{}); codeOf(err) != codes.Unauthenticated {
		t.Errorf("ReportEvents without a certificate = %v, want Unauthenticated", err)
	}
	c, _ := e.register("n1")
	evs := make([]*api.PodEvent, 1001)
	for i := range evs {
		evs[i] = &api.PodEvent{Namespace: "default", Name: "p", Type: "Normal", Reason: "Started"}
	}
	if _, err := c.ReportEvents(ctxT(t), &api.EventReport{Events: evs}); codeOf(err) != codes.InvalidArgument {
		t.Errorf("ReportEvents with 1001 events = %v, want InvalidArgument", err)
	}
}

func codeOf(err error) codes.Code { return status.Code(err) }
