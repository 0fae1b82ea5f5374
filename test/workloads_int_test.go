//go:build integration

package test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// rollingDeployment serves "VERSION POD" on port 8080. A new pod is ready
// only once httpd answers; an old one keeps serving for 3 s after it is
// told to stop (its preStop hook), long enough for every node to drop it
// from the Service, so that a rollout loses no request.
const rollingDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        env: [{name: VERSION, value: v1}]
        command: ["sh", "-c", "mkdir -p /www && echo \"$VERSION $(hostname)\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
        lifecycle:
          preStop: {exec: {command: ["sleep", "3"]}}
        resources: {requests: {cpu: 10m, memory: 8Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`

// startTwoNodes starts a server and two joined agents, Ready, whose
// network namespaces send Service IPs without rules to lo.
func startTwoNodes(t *testing.T) (*serverProc, *kubernetes.Clientset, *agentProc, *agentProc) {
	t.Helper()
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1, "--heartbeat-interval", "1s")
	n2 := startAgent(t, s, ip, 2, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	waitNodeReady(t, cs, n2.name)
	for _, n := range []*agentProc{n1, n2} {
		if out, err := n.inNode("ip", "route", "add", "10.43.0.0/16", "dev", "lo"); err != nil {
			t.Fatalf("service CIDR route in %s: %v\n%s", n.name, err, out)
		}
	}
	return s, cs, n1, n2
}

// webVersions returns the VERSION of each Running pod of app=web not
// being deleted, by pod name.
func webVersions(cs *kubernetes.Clientset) (map[string]string, error) {
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == "VERSION" {
				out[p.Name] = e.Value
			}
		}
	}
	return out, nil
}

// waitRolledOut waits until the Deployment has exactly 3 pods, all of
// version, all updated and available.
func waitRolledOut(t *testing.T, cs *kubernetes.Clientset, version string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "3 available replicas of "+version, func() error {
		d, err := cs.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := d.Status
		if st.ObservedGeneration != d.Generation || st.Replicas != 3 || st.UpdatedReplicas != 3 || st.AvailableReplicas != 3 {
			return fmt.Errorf("status %+v (generation %d)", st, d.Generation)
		}
		got, err := webVersions(cs)
		if err != nil {
			return err
		}
		if len(got) != 3 {
			return fmt.Errorf("running pods %v", got)
		}
		for name, v := range got {
			if v != version {
				return fmt.Errorf("pod %s runs %s", name, v)
			}
		}
		return nil
	})
}

// trafficStats counts the answers of a stream of requests by version.
type trafficStats struct {
	mu       sync.Mutex
	versions map[string]int
	failed   int
	lastErr  string
}

func (s *trafficStats) record(body string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || body == "" {
		s.failed++
		s.lastErr = fmt.Sprintf("%v (body %q)", err, body)
		return
	}
	s.versions[strings.Fields(body)[0]]++
}

// sendTraffic requests addr from node a every 20 ms until stop closes.
func sendTraffic(a *agentProc, addr string, stop <-chan struct{}) (*trafficStats, <-chan struct{}) {
	st := &trafficStats{versions: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			st.record(a.httpGet(addr, "/"))
		}
	}()
	return st, done
}

// TestIntegrationDeploymentRollingUpdate updates a Deployment of 3
// replicas behind a Service while a client on another node sends requests
// through the Service the whole time: none may fail, and at the end every
// replica runs the new version. kubectl's rollout undo then brings the old
// version back, again without a failed request.
func TestIntegrationDeploymentRollingUpdate(t *testing.T) {
	s, cs, n1, n2 := startTwoNodes(t)
	ctx := context.Background()
	s.mustMinik(rollingDeployment, "apply", "-f", "-")
	waitRolledOut(t, cs, "v1", 120*time.Second)
	svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	eventually(t, 60*time.Second, "the Service answers from "+n1.name, func() error {
		_, err := n1.httpGet(vip, "/")
		return err
	})
	var spread map[string]int
	eventually(t, 30*time.Second, "replicas on both nodes", func() error {
		_, spread = webPods(t, cs)
		if spread[n1.name] == 0 || spread[n2.name] == 0 {
			return fmt.Errorf("running per node %v", spread)
		}
		return nil
	})

	rollout := func(what, want string, change func()) {
		t.Helper()
		stop := make(chan struct{})
		st, done := sendTraffic(n1, vip, stop)
		time.Sleep(time.Second)
		start := time.Now()
		change()
		waitRolledOut(t, cs, want, 180*time.Second)
		took := time.Since(start)
		// Requests keep going until the last old pod has stopped (its
		// preStop hook holds it 3 s after its deletion).
		time.Sleep(5 * time.Second)
		close(stop)
		<-done
		st.mu.Lock()
		defer st.mu.Unlock()
		total := st.failed
		for _, n := range st.versions {
			total += n
		}
		t.Logf("%s: rolled out in %v; %d requests through the Service: answers by version %v, %d failed",
			what, took.Round(time.Millisecond), total, st.versions, st.failed)
		if st.failed > 0 {
			t.Errorf("%s: %d of %d requests failed (last: %s)", what, st.failed, total, st.lastErr)
		}
		if st.versions[want] == 0 {
			t.Errorf("%s: no request reached %s: %v", what, want, st.versions)
		}
	}

	rollout("update to v2", "v2", func() {
		patch := `{"spec":{"template":{"spec":{"containers":[{"name":"httpd","env":[{"name":"VERSION","value":"v2"}]}]}}}}`
		if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch to v2: %v", err)
		}
	})
	got, err := backends(n2, vip, 30)
	if err != nil || len(got) != 3 || slices.ContainsFunc(got, func(b string) bool { return !strings.HasPrefix(b, "v2 ") }) {
		t.Errorf("after the update, 30 requests from %s reached %v (err %v), want the 3 v2 pods", n2.name, got, err)
	}
	rsList, err := cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rsList.Items) != 2 {
		t.Errorf("%d ReplicaSets after one update, want 2 (the old one scaled to 0)", len(rsList.Items))
	}

	rollout("rollout undo", "v1", func() {
		out, code := runKubectl(t, s, []string{s.bin, "kubectl"}, "", "rollout", "undo", "deployment/web")
		if code != 0 || !strings.Contains(out, "rolled back") {
			t.Fatalf("kubectl rollout undo: exit %d: %s", code, out)
		}
	})
	d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "3" {
		t.Errorf("revision after undo = %q, want 3", rev)
	}
	checkNoSurplusReplicaSets(t, cs, d)
}

// checkNoSurplusReplicaSets checks that only the Deployment's current
// ReplicaSet has replicas.
func checkNoSurplusReplicaSets(t *testing.T, cs *kubernetes.Clientset, d *appsv1.Deployment) {
	t.Helper()
	list, err := cs.AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var scaled []string
	for _, rs := range list.Items {
		if rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0 {
			scaled = append(scaled, fmt.Sprintf("%s=%d", rs.Name, *rs.Spec.Replicas))
		}
	}
	if len(scaled) != 1 {
		t.Errorf("ReplicaSets with replicas: %v, want only the current one", scaled)
	}
}

const indexedJob = `apiVersion: batch/v1
kind: Job
metadata: {name: indexed}
spec:
  completions: 5
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "echo index $JOB_COMPLETION_INDEX on $(hostname); sleep 2"]
        resources: {requests: {cpu: 10m, memory: 8Mi}}
`

// TestIntegrationIndexedJob runs an Indexed Job of 5 completions, 2 at a
// time, over two nodes: it completes with each index run exactly once,
// and never more than 2 pods run at a time.
func TestIntegrationIndexedJob(t *testing.T) {
	s, cs, _, _ := startTwoNodes(t)
	ctx := context.Background()
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=indexed"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var maxActive atomic.Int32
	go func() {
		active := map[string]bool{}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			running := ev.Type != watch.Deleted && p.DeletionTimestamp == nil &&
				p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
			if running {
				active[p.Name] = true
			} else {
				delete(active, p.Name)
			}
			if n := int32(len(active)); n > maxActive.Load() {
				maxActive.Store(n)
			}
		}
	}()

	start := time.Now()
	s.mustMinik(indexedJob, "apply", "-f", "-")
	var job *batchv1.Job
	eventually(t, 180*time.Second, "job indexed Complete", func() error {
		job, err = cs.BatchV1().Jobs("default").Get(ctx, "indexed", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				t.Fatalf("job failed: %s: %s", c.Reason, c.Message)
			}
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("status %+v", job.Status)
	})
	t.Logf("indexed job of 5 completions, parallelism 2, completed in %v", time.Since(start).Round(time.Millisecond))
	if job.Status.CompletedIndexes != "0-4" || job.Status.Succeeded != 5 || job.Status.Failed != 0 || job.Status.Active != 0 {
		t.Errorf("status: completedIndexes %q succeeded %d failed %d active %d; want 0-4, 5, 0, 0",
			job.Status.CompletedIndexes, job.Status.Succeeded, job.Status.Failed, job.Status.Active)
	}

	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=indexed"})
	if err != nil {
		t.Fatal(err)
	}
	var indexes []string
	nodes := map[string]int{}
	for _, p := range list.Items {
		ix := p.Annotations["batch.kubernetes.io/job-completion-index"]
		indexes = append(indexes, ix)
		nodes[p.Spec.NodeName]++
		if p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("pod %s (index %s) phase %s, want Succeeded", p.Name, ix, p.Status.Phase)
		}
		if len(p.Finalizers) != 0 {
			t.Errorf("pod %s keeps finalizers %v", p.Name, p.Finalizers)
		}
		logs, err := podLogs(cs, "default", p.Name)
		if want := fmt.Sprintf("index %s on indexed-%s", ix, ix); err != nil || !strings.Contains(logs, want) {
			t.Errorf("pod %s logs %q (err %v), want %q", p.Name, logs, err, want)
		}
	}
	sort.Strings(indexes)
	if !slices.Equal(indexes, []string{"0", "1", "2", "3", "4"}) {
		t.Errorf("pods ran indexes %v, want each of 0-4 once", indexes)
	}
	if n := maxActive.Load(); n > 2 || n == 0 {
		t.Errorf("at most %d pods ran at a time, want 2 (the parallelism)", n)
	}
	t.Logf("pods per node %v, at most %d at a time", nodes, maxActive.Load())
}

// everyMinute runs a short Job every minute and keeps one successful Job.
const everyMinute = `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: tick
            image: busybox
            imagePullPolicy: IfNotPresent
            command: ["sh", "-c", "date; sleep 1"]
            resources: {requests: {cpu: 10m, memory: 8Mi}}
`

// TestIntegrationCronJob runs a CronJob every minute: within 130 s it has
// run twice, both runs succeeded, and only the latest successful Job
// remains (successfulJobsHistoryLimit 1).
func TestIntegrationCronJob(t *testing.T) {
	s, cs, _, _ := startTwoNodes(t)
	ctx := context.Background()
	w, err := cs.BatchV1().Jobs("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]bool{}
	go func() {
		for ev := range w.ResultChan() {
			if j, ok := ev.Object.(*batchv1.Job); ok && ev.Type == watch.Added {
				mu.Lock()
				created[j.Name] = true
				mu.Unlock()
			}
		}
	}()

	start := time.Now()
	s.mustMinik(everyMinute, "apply", "-f", "-")
	runs := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(created)
	}
	eventually(t, 130*time.Second, "two runs of tick", func() error {
		if n := runs(); n < 2 {
			return fmt.Errorf("%d runs", n)
		}
		return nil
	})
	t.Logf("two runs created %v after the CronJob", time.Since(start).Round(time.Second))
	var jobs []batchv1.Job
	eventually(t, 60*time.Second, "both runs succeeded and only the latest kept", func() error {
		cj, err := cs.BatchV1().CronJobs("default").Get(ctx, "tick", metav1.GetOptions{})
		if err != nil {
			return err
		}
		list, err := cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		jobs = list.Items
		if len(jobs) != 1 || !jobComplete(&jobs[0]) || cj.Status.LastSuccessfulTime == nil || len(cj.Status.Active) != 0 {
			return fmt.Errorf("%d jobs left, lastSuccessfulTime %v, active %v", len(jobs), cj.Status.LastSuccessfulTime, cj.Status.Active)
		}
		return nil
	})
	mu.Lock()
	names := make([]string, 0, len(created))
	for n := range created {
		names = append(names, n)
	}
	mu.Unlock()
	sort.Strings(names)
	t.Logf("runs %v after %v; kept %s", names, time.Since(start).Round(time.Second), jobs[0].Name)
	if len(names) != 2 {
		t.Errorf("runs %v, want exactly 2 within 130 s", names)
	}
	if jobs[0].Name != names[len(names)-1] {
		t.Errorf("kept job %s, want the latest run %s", jobs[0].Name, names[len(names)-1])
	}
	s.mustMinik("", "delete", "cronjob", "tick")
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// evictedJob's pods wait for an eviction the first time and succeed the
// second: a marker in a host directory of node1 tells them apart.
const evictedJob = `apiVersion: batch/v1
kind: Job
metadata: {name: evicted}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget, status: "True"}]
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {kubernetes.io/hostname: node1}
      terminationGracePeriodSeconds: 1
      volumes: [{name: marks, hostPath: {path: MARKS, type: DirectoryOrCreate}}]
      containers:
      - name: work
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "m=/marks/$JOB_COMPLETION_INDEX; if [ -e $m ]; then exit 0; fi; touch $m; exec sleep 3600"]
        volumeMounts: [{name: marks, mountPath: /marks}]
        resources: {requests: {cpu: 10m, memory: 8Mi}}
`

// TestIntegrationJobIgnoresEvictions evicts the running pods of a Job
// whose pod failure policy ignores disruptions: the evicted pods end
// Failed with the DisruptionTarget condition, are not counted, and their
// replacements complete the Job, although its backoffLimit is 0.
func TestIntegrationJobIgnoresEvictions(t *testing.T) {
	s, cs, _, _ := startTwoNodes(t)
	ctx := context.Background()
	marks := t.TempDir()
	s.mustMinik(strings.ReplaceAll(evictedJob, "MARKS", marks), "apply", "-f", "-")
	var first []corev1.Pod
	eventually(t, 90*time.Second, "2 running pods of the job", func() error {
		list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=evicted"})
		if err != nil {
			return err
		}
		first = nil
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				first = append(first, p)
			}
		}
		if len(first) != 2 {
			return fmt.Errorf("%d running", len(first))
		}
		return nil
	})
	start := time.Now()
	for _, p := range first {
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: "default"}}
		if err := cs.CoreV1().Pods("default").EvictV1(ctx, ev); err != nil {
			t.Fatalf("evict %s: %v", p.Name, err)
		}
	}
	var job *batchv1.Job
	eventually(t, 120*time.Second, "job evicted Complete", func() error {
		var err error
		job, err = cs.BatchV1().Jobs("default").Get(ctx, "evicted", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				t.Fatalf("job failed: %s: %s", c.Reason, c.Message)
			}
		}
		if !jobComplete(job) {
			return fmt.Errorf("status %+v", job.Status)
		}
		return nil
	})
	t.Logf("job complete %v after evicting its 2 pods", time.Since(start).Round(time.Millisecond))
	if job.Status.Failed != 0 || job.Status.Succeeded != 2 || job.Status.CompletedIndexes != "0,1" {
		t.Errorf("status: failed %d succeeded %d completedIndexes %q; want 0, 2, 0,1", job.Status.Failed, job.Status.Succeeded, job.Status.CompletedIndexes)
	}
	for _, p := range first {
		if _, err := cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
			t.Errorf("evicted pod %s still exists", p.Name)
		}
	}
}
