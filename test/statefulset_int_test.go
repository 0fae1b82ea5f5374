//go:build integration

package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// statefulWeb is a StatefulSet of 3 whose pods serve their own hostname
// on port 8080, governed by the headless Service web.
const statefulWeb = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: sts-web}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: sts-web}}
  template:
    metadata:
      labels: {app: sts-web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
        resources: {requests: {cpu: 10m, memory: 8Mi}}
`

// podEvents records, per pod, when the API first showed it created and
// when it first showed it ready or deleted.
type podEvents struct {
	mu      sync.Mutex
	created map[string]time.Time
	ready   map[string]time.Time
	deleted []string
}

func watchPodEvents(t *testing.T, ctx context.Context, w watch.Interface) *podEvents {
	pe := &podEvents{created: map[string]time.Time{}, ready: map[string]time.Time{}}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now := time.Now()
			pe.mu.Lock()
			if _, seen := pe.created[p.Name]; !seen && ev.Type != watch.Deleted {
				pe.created[p.Name] = now
			}
			if _, seen := pe.ready[p.Name]; !seen && isReady(p) {
				pe.ready[p.Name] = now
			}
			if ev.Type == watch.Deleted {
				pe.deleted = append(pe.deleted, p.Name)
			}
			pe.mu.Unlock()
		}
	}()
	return pe
}

// TestIntegrationStatefulSet runs a StatefulSet of 3 on a real node:
// its pods start one after another, each once the previous is ready,
// every pod answers at its own DNS name through the cluster DNS, and
// scaling down removes the highest ordinal first.
func TestIntegrationStatefulSet(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	if out, err := n1.inNode("ip", "route", "add", "10.43.0.0/16", "dev", "lo"); err != nil {
		t.Fatalf("service CIDR route in %s: %v\n%s", n1.name, err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=sts-web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	events := watchPodEvents(t, ctx, w)

	s.mustMinik(statefulWeb, "apply", "-f", "-")
	t.Cleanup(func() { s.minik("", "delete", "statefulset", "web") })
	eventually(t, 180*time.Second, "3 ready pods", func() error {
		events.mu.Lock()
		defer events.mu.Unlock()
		if len(events.ready) != 3 {
			return fmt.Errorf("ready %v", events.ready)
		}
		return nil
	})
	events.mu.Lock()
	for i := 1; i < 3; i++ {
		prev, cur := fmt.Sprintf("web-%d", i-1), fmt.Sprintf("web-%d", i)
		if !events.created[cur].After(events.ready[prev]) {
			t.Errorf("%s created at %v, before %s was ready at %v", cur, events.created[cur], prev, events.ready[prev])
		}
	}
	events.mu.Unlock()
	sts, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := sts.Status; st.ReadyReplicas != 3 || st.CurrentRevision == "" || st.CurrentRevision != st.UpdateRevision {
		t.Errorf("status %+v, want 3 ready at one revision", st)
	}

	// Each pod by its own name, from web-0, through the cluster DNS.
	script := `set -e
nslookup %[1]s.web.default.svc.cluster.local > /tmp/ns.out || { cat /tmp/ns.out; exit 1; }
ip=$(awk '/^Address/ {a=$NF} END {print a}' /tmp/ns.out)
printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $ip 8080 | tail -n 1`
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		eventually(t, 30*time.Second, name+" by its DNS name", func() error {
			out, code := s.minik("", "exec", "web-0", "--", "sh", "-c", fmt.Sprintf(script, name))
			if code != 0 || strings.TrimSpace(out) != name {
				return fmt.Errorf("exit %d: %q", code, out)
			}
			return nil
		})
	}

	checkRollout(t, s, cs, sts.Status.CurrentRevision)
	events.mu.Lock()
	events.deleted = nil // the rollout's
	events.mu.Unlock()

	s.mustMinik("", "scale", "statefulset", "web", "--replicas", "1")
	eventually(t, 60*time.Second, "web-2 and web-1 deleted", func() error {
		events.mu.Lock()
		defer events.mu.Unlock()
		if len(events.deleted) < 2 {
			return fmt.Errorf("deleted %v", events.deleted)
		}
		return nil
	})
	events.mu.Lock()
	if got := events.deleted; !slices.Equal(got, []string{"web-2", "web-1"}) {
		t.Errorf("deleted %v, want web-2 then web-1", got)
	}
	events.mu.Unlock()
}

// checkRollout rolls statefulset/web to a new template and back with
// kubectl rollout, which reads the status and the ControllerRevisions.
func checkRollout(t *testing.T, s *serverProc, cs *kubernetes.Clientset, first string) {
	t.Helper()
	// The set has the default partition 0, so kubectl reports a
	// partitioned roll out.
	status := func(what string) *appsv1.StatefulSet {
		t.Helper()
		out := s.mustMinik("", "kubectl", "rollout", "status", "statefulset/web", "--timeout=50s") // within the harness's 60 s per command
		if !strings.Contains(out, "roll out complete: 3 new pods have been updated") {
			t.Errorf("rollout status %s:\n%s", what, out)
		}
		sts, err := cs.AppsV1().StatefulSets("default").Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st := sts.Status; st.CurrentRevision != st.UpdateRevision || st.UpdatedReplicas != 3 {
			t.Errorf("status %s: %+v", what, st)
		}
		return sts
	}
	status("before the update")
	s.mustMinik("", "patch", "statefulset", "web", "-p", `{"spec":{"template":{"metadata":{"annotations":{"rollout":"2"}}}}}`)
	if sts := status("after the update"); sts.Status.UpdateRevision == first {
		t.Errorf("update revision still %s after a template change", first)
	}
	hist := s.mustMinik("", "kubectl", "rollout", "history", "statefulset/web")
	if !strings.Contains(hist, "\n1 ") || !strings.Contains(hist, "\n2 ") {
		t.Errorf("rollout history lacks revisions 1 and 2:\n%s", hist)
	}
	if out := s.mustMinik("", "kubectl", "rollout", "undo", "statefulset/web"); !strings.Contains(out, "rolled back") {
		t.Errorf("rollout undo: %s", out)
	}
	if sts := status("after undo"); sts.Status.UpdateRevision != first {
		t.Errorf("update revision %s after undo, want %s", sts.Status.UpdateRevision, first)
	}
}
