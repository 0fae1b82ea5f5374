//go:build integration

package test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// helmVersion is the helm v3 release the test drives, built from the Go
// module proxy.
const helmVersion = "v3.21.4"

// helmCacheDir holds built test tools across runs, one directory per
// tool and version; MINIK_TEST_CACHE moves it.
func helmCacheDir() string {
	if d := os.Getenv("MINIK_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/minik-test-cache"
}

// helmBinary returns the path of the helm CLI of helmVersion, building it
// with `go install` outside minik's module the first time. The binary is
// renamed into place, so a run that stops half-way leaves no broken cache.
func helmBinary(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(helmCacheDir(), "helm-"+helmVersion)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building helm needs the go command: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", "helm.sh/helm/v3/cmd/helm@"+helmVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOBIN="+tmp, "GOWORK=off")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install helm %s: %v\n%s", helmVersion, err, out)
	}
	t.Logf("built helm %s in %v", helmVersion, time.Since(start).Round(time.Second))
	if err := os.Rename(filepath.Join(tmp, "helm"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// helmCLI runs the helm binary against one server with the admin
// kubeconfig, its own config, cache and data directories.
type helmCLI struct {
	t   *testing.T
	bin string
	env []string
}

func newHelmCLI(t *testing.T, bin, kubeconfig string) *helmCLI {
	home := t.TempDir()
	return &helmCLI{t: t, bin: bin, env: append(os.Environ(),
		"KUBECONFIG="+kubeconfig,
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)}
}

// run runs helm and fails the test if it does not exit 0.
func (h *helmCLI) run(args ...string) string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		h.t.Fatalf("helm %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// runJSON runs helm with -o json and decodes its output into v.
func (h *helmCLI) runJSON(v any, args ...string) {
	h.t.Helper()
	out := h.run(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("helm %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// helmRelease is what helm keeps of a release (in the data of its
// storage Secret) and prints with -o json: the fields the test reads.
type helmRelease struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Version   int    `json:"version"`
	Info      struct {
		Status string `json:"status"`
	} `json:"info"`
	Manifest string `json:"manifest"`
	Hooks    []struct {
		Name    string `json:"name"`
		Kind    string `json:"kind"`
		LastRun struct {
			Phase string `json:"phase"`
		} `json:"last_run"`
	} `json:"hooks"`
}

// hookPhase returns the phase of the last run of the hook named name.
func (r helmRelease) hookPhase(name string) string {
	for _, h := range r.Hooks {
		if h.Name == name {
			return h.LastRun.Phase
		}
	}
	return ""
}

// decodeRelease reads a release Secret's data: base64 of gzip of JSON.
func decodeRelease(s *corev1.Secret) (helmRelease, error) {
	var r helmRelease
	raw, err := base64.StdEncoding.DecodeString(string(s.Data["release"]))
	if err != nil {
		return r, fmt.Errorf("secret %s: release: %w", s.Name, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return r, fmt.Errorf("secret %s: release: %w", s.Name, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return r, fmt.Errorf("secret %s: release: %w", s.Name, err)
	}
	return r, json.Unmarshal(data, &r)
}

var (
	crdsResource      = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	greetingsResource = schema.GroupVersionResource{Group: "helm.example.com", Version: "v1", Resource: "greetings"}
)

const (
	helmNS      = "helm-e2e"
	helmRelName = "greeter"
	greetingCRD = "greetings.helm.example.com"
)

// TestIntegrationHelm installs, upgrades and uninstalls a chart with the
// real helm v3 CLI over HTTPS with the admin kubeconfig: a CRD from the
// chart's crds/, an object of its kind, a Deployment whose pods run on a
// real node, a Service and a Secret. helm keeps its releases in Secrets of
// type helm.sh/release.v1 and waits on the objects' status fields.
func TestIntegrationHelm(t *testing.T) {
	binary(t)
	helmBin := helmBinary(t)
	s, ip := startClusterServer(t)
	node := startAgent(t, s, ip, 1)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, node.name)
	// The test hook reaches the Service's IP: one without rules yet must
	// not leave the node's namespace.
	if out, err := node.inNode("ip", "route", "add", "10.43.0.0/16", "dev", "lo"); err != nil {
		t.Fatalf("service CIDR route: %v\n%s", err, out)
	}
	helm := newHelmCLI(t, helmBin, s.kubeconfig())
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	chart := filepath.Join("testdata", "helmchart")

	helm.run("install", helmRelName, chart, "-n", helmNS, "--create-namespace", "--wait", "--timeout", "3m")
	checkHelmInstalled(t, s, cs, dyn)

	helm.run("upgrade", helmRelName, chart, "-n", helmNS, "--set", "replicaCount=2", "--set", "message=hello again", "--wait", "--timeout", "3m")
	checkHelmUpgraded(t, s, cs, dyn)

	// The test hook fetches the page through the Service by its DNS name;
	// its pod fails unless the page is the upgraded message.
	if out := helm.run("test", helmRelName, "-n", helmNS, "--timeout", "2m"); !strings.Contains(out, "TEST SUITE:     "+helmRelName+"-message-test") || !strings.Contains(out, "Succeeded") {
		t.Errorf("helm test:\n%s\nwant %s-message-test Succeeded", out, helmRelName)
	}
	// hook-succeeded: helm deleted the pod once it had succeeded.
	if _, err := cs.CoreV1().Pods(helmNS).Get(ctx, helmRelName+"-message-test", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("test pod after helm test: %v, want NotFound", err)
	}

	checkHelmReports(t, helm)

	// A second release of the chart (its CRD is there: helm skips it),
	// uninstalled in the foreground: each object, the Secret too, goes
	// once its dependents have, which --wait waits for.
	helm.run("install", "quiet", chart, "-n", helmNS, "--set", "replicaCount=0", "--wait", "--timeout", "3m")
	helm.run("uninstall", "quiet", "-n", helmNS, "--cascade=foreground", "--wait", "--timeout", "2m")
	checkReleaseGone(t, cs, dyn, "quiet")

	helm.run("uninstall", helmRelName, "-n", helmNS, "--wait", "--timeout", "2m")
	checkHelmUninstalled(t, cs, dyn)
	var list []struct{ Name string }
	helm.runJSON(&list, "list", "-n", helmNS, "--all")
	if len(list) != 0 {
		t.Errorf("helm list --all after uninstall = %+v, want none", list)
	}
	// helm leaves the CRDs of crds/ behind on purpose: remove this one.
	if err := dyn.Resource(crdsResource).Delete(ctx, greetingCRD, metav1.DeleteOptions{}); err != nil {
		t.Errorf("deleting CRD %s: %v", greetingCRD, err)
	}
}

// checkHelmReports checks what helm list, status and history say of the
// upgraded release.
func checkHelmReports(t *testing.T, helm *helmCLI) {
	t.Helper()
	var list []struct {
		Name, Namespace, Revision, Status, Chart string
	}
	helm.runJSON(&list, "list", "-n", helmNS)
	if len(list) != 1 || list[0].Name != helmRelName || list[0].Revision != "2" || list[0].Status != "deployed" || list[0].Chart != "greeter-0.1.0" {
		t.Errorf("helm list = %+v, want greeter revision 2 deployed of chart greeter-0.1.0", list)
	}
	var status helmRelease
	helm.runJSON(&status, "status", helmRelName, "-n", helmNS)
	if status.Version != 2 || status.Info.Status != "deployed" || status.Namespace != helmNS {
		t.Errorf("helm status = version %d %s in %q, want version 2 deployed in %q", status.Version, status.Info.Status, status.Namespace, helmNS)
	}
	var history []struct {
		Revision int
		Status   string
	}
	helm.runJSON(&history, "history", helmRelName, "-n", helmNS)
	if len(history) != 2 || history[0].Revision != 1 || history[0].Status != "superseded" || history[1].Revision != 2 || history[1].Status != "deployed" {
		t.Errorf("helm history = %+v, want 1 superseded, 2 deployed", history)
	}
}

// checkHelmInstalled checks what revision 1 made: every object of the
// chart, the pod Running with the message of values.yaml, the release.
func checkHelmInstalled(t *testing.T, s *serverProc, cs *kubernetes.Clientset, dyn dynamic.Interface) {
	t.Helper()
	ctx := context.Background()
	crd, err := dyn.Resource(crdsResource).Get(ctx, greetingCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("CRD from crds/: %v", err)
	}
	if !crdEstablished(crd) {
		t.Errorf("CRD %s not Established: %v", greetingCRD, crd.Object["status"])
	}
	checkGreeting(t, dyn, "hello from helm", 1)
	checkMessageSecret(t, cs, "hello from helm")
	svc, err := cs.CoreV1().Services(helmNS).Get(ctx, helmRelName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Service: %v", err)
	}
	if svc.Spec.ClusterIP == "" || svc.Labels["app.kubernetes.io/managed-by"] != "Helm" || svc.Annotations["meta.helm.sh/release-name"] != helmRelName {
		t.Errorf("Service: clusterIP %q labels %v annotations %v, want an IP and helm's ownership marks", svc.Spec.ClusterIP, svc.Labels, svc.Annotations)
	}
	dep, err := cs.AppsV1().Deployments(helmNS).Get(ctx, helmRelName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment: %v", err)
	}
	// --wait returned: the Deployment's pod is ready, not merely created.
	if dep.Status.ReadyReplicas != 1 {
		t.Errorf("Deployment readyReplicas = %d after helm install --wait, want 1", dep.Status.ReadyReplicas)
	}
	pods := greeterPods(t, cs, 1, "hello from helm")
	if out, code := s.minik("", "logs", "-n", helmNS, pods[0].Name); code != 0 || !strings.Contains(out, "hello from helm") {
		t.Errorf("logs of pod %s: exit %d %q, want the message of values.yaml", pods[0].Name, code, out)
	}
	rel := releaseSecret(t, cs, 1)
	r, err := decodeRelease(rel)
	if err != nil || r.Name != helmRelName || r.Version != 1 || r.Info.Status != "deployed" || !strings.Contains(r.Manifest, "kind: Greeting") {
		t.Errorf("release in %s = %+v (%v), want greeter version 1 deployed with the Greeting in its manifest", rel.Name, r, err)
	}
	checkAnnounceHook(t, cs, r)
}

// checkAnnounceHook checks that the post-install/post-upgrade Job ran to
// completion, as the release records, and that helm then deleted it.
func checkAnnounceHook(t *testing.T, cs *kubernetes.Clientset, r helmRelease) {
	t.Helper()
	name := helmRelName + "-announce"
	if phase := r.hookPhase(name); phase != "Succeeded" {
		t.Errorf("release version %d: hook %s last ran %q, want Succeeded", r.Version, name, phase)
	}
	if _, err := cs.BatchV1().Jobs(helmNS).Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("hook Job %s after it succeeded: %v, want NotFound", name, err)
	}
}

// checkHelmUpgraded checks revision 2: replicas 2 and the new message
// everywhere, the Deployment rolled to a new ReplicaSet, both releases.
func checkHelmUpgraded(t *testing.T, s *serverProc, cs *kubernetes.Clientset, dyn dynamic.Interface) {
	t.Helper()
	ctx := context.Background()
	checkGreeting(t, dyn, "hello again", 2)
	checkMessageSecret(t, cs, "hello again")
	dep, err := cs.AppsV1().Deployments(helmNS).Get(ctx, helmRelName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment: %v", err)
	}
	if *dep.Spec.Replicas != 2 || dep.Status.ReadyReplicas < 1 {
		t.Errorf("Deployment replicas %d ready %d after helm upgrade --wait, want 2 and at least 1 ready", *dep.Spec.Replicas, dep.Status.ReadyReplicas)
	}
	sets, err := cs.AppsV1().ReplicaSets(helmNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + helmRelName})
	if err != nil {
		t.Fatal(err)
	}
	if len(sets.Items) != 2 {
		t.Errorf("%d ReplicaSets after the upgrade, want the old and the new one", len(sets.Items))
	}
	pods := greeterPods(t, cs, 2, "hello again")
	for _, p := range pods {
		if owner := metav1.GetControllerOf(&p); owner == nil || owner.Name == "" || !rolledSet(sets.Items, owner.Name) {
			t.Errorf("pod %s is owned by %v, want the ReplicaSet of the new template", p.Name, owner)
		}
	}
	eventually(t, 60*time.Second, "the new pods' logs", func() error {
		for _, p := range pods {
			if out, code := s.minik("", "logs", "-n", helmNS, p.Name); code != 0 || !strings.Contains(out, "hello again") {
				return fmt.Errorf("logs of pod %s: exit %d %q", p.Name, code, out)
			}
		}
		return nil
	})
	v1, v2 := releaseSecret(t, cs, 1), releaseSecret(t, cs, 2)
	if v1.Labels["status"] != "superseded" || v2.Labels["status"] != "deployed" {
		t.Errorf("release statuses v1 %q v2 %q, want superseded and deployed", v1.Labels["status"], v2.Labels["status"])
	}
	r, err := decodeRelease(v2)
	if err != nil {
		t.Fatal(err)
	}
	checkAnnounceHook(t, cs, r)
}

// rolledSet reports whether the ReplicaSet named name carries the
// upgraded template (replicas 2), as opposed to revision 1's.
func rolledSet(sets []appsv1.ReplicaSet, name string) bool {
	for _, rs := range sets {
		if rs.Name == name {
			return rs.Spec.Replicas != nil && *rs.Spec.Replicas == 2
		}
	}
	return false
}

// checkReleaseGone checks that the objects of release rel and its
// release Secrets are gone.
func checkReleaseGone(t *testing.T, cs *kubernetes.Clientset, dyn dynamic.Interface, rel string) {
	t.Helper()
	ctx := context.Background()
	gone := map[string]error{}
	_, gone["Deployment"] = cs.AppsV1().Deployments(helmNS).Get(ctx, rel, metav1.GetOptions{})
	_, gone["Service"] = cs.CoreV1().Services(helmNS).Get(ctx, rel, metav1.GetOptions{})
	_, gone["Secret"] = cs.CoreV1().Secrets(helmNS).Get(ctx, rel+"-message", metav1.GetOptions{})
	_, gone["Greeting"] = dyn.Resource(greetingsResource).Namespace(helmNS).Get(ctx, rel, metav1.GetOptions{})
	for kind, err := range gone {
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s of release %s after helm uninstall: %v, want NotFound", kind, rel, err)
		}
	}
	releases, err := cs.CoreV1().Secrets(helmNS).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + rel})
	if err != nil {
		t.Fatal(err)
	}
	if len(releases.Items) != 0 {
		t.Errorf("%d release Secrets of %s after helm uninstall, want none", len(releases.Items), rel)
	}
}

// checkHelmUninstalled checks that the chart's objects and the release
// Secrets are gone, and the CRD of crds/ stays.
func checkHelmUninstalled(t *testing.T, cs *kubernetes.Clientset, dyn dynamic.Interface) {
	t.Helper()
	ctx := context.Background()
	checkReleaseGone(t, cs, dyn, helmRelName)
	if _, err := dyn.Resource(crdsResource).Get(ctx, greetingCRD, metav1.GetOptions{}); err != nil {
		t.Errorf("CRD %s after helm uninstall: %v, want it kept", greetingCRD, err)
	}
	// The Deployment went with background propagation: the collector
	// removes its ReplicaSets and pods after it.
	eventually(t, 90*time.Second, "the Deployment's pods deleted", func() error {
		pods, err := cs.CoreV1().Pods(helmNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + helmRelName})
		if err != nil {
			return err
		}
		if len(pods.Items) != 0 {
			return fmt.Errorf("%d pods left", len(pods.Items))
		}
		return nil
	})
}

func crdEstablished(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// checkGreeting checks the chart's custom object against the values.
func checkGreeting(t *testing.T, dyn dynamic.Interface, message string, replicas int64) {
	t.Helper()
	g, err := dyn.Resource(greetingsResource).Namespace(helmNS).Get(context.Background(), helmRelName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Greeting: %v", err)
	}
	msg, _, _ := unstructured.NestedString(g.Object, "spec", "message")
	n, _, _ := unstructured.NestedInt64(g.Object, "spec", "replicas")
	if msg != message || n != replicas {
		t.Errorf("Greeting spec = message %q replicas %d, want %q and %d", msg, n, message, replicas)
	}
}

// checkMessageSecret checks the chart's Secret against the values.
func checkMessageSecret(t *testing.T, cs *kubernetes.Clientset, message string) {
	t.Helper()
	sec, err := cs.CoreV1().Secrets(helmNS).Get(context.Background(), helmRelName+"-message", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	if got := string(sec.Data["message"]); got != message {
		t.Errorf("Secret data.message = %q, want %q", got, message)
	}
}

// greeterPods waits until exactly n of the release's pods exist, all
// Running and ready with MESSAGE set to message, and returns them.
func greeterPods(t *testing.T, cs *kubernetes.Clientset, n int, message string) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, 90*time.Second, fmt.Sprintf("%d pods Running with %q", n, message), func() error {
		list, err := cs.CoreV1().Pods(helmNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + helmRelName})
		if err != nil {
			return err
		}
		if len(list.Items) != n {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		for _, p := range list.Items {
			if p.Status.Phase != corev1.PodRunning || !isReady(&p) || p.DeletionTimestamp != nil {
				return fmt.Errorf("pod %s: phase %s ready %v deleting %v", p.Name, p.Status.Phase, isReady(&p), p.DeletionTimestamp != nil)
			}
			if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != message {
				return fmt.Errorf("pod %s: env %v", p.Name, env)
			}
		}
		pods = list.Items
		return nil
	})
	return pods
}

// releaseSecret returns helm's storage Secret of revision v and checks
// its type and labels.
func releaseSecret(t *testing.T, cs *kubernetes.Clientset, v int) *corev1.Secret {
	t.Helper()
	name := fmt.Sprintf("sh.helm.release.v1.%s.v%d", helmRelName, v)
	sec, err := cs.CoreV1().Secrets(helmNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("release Secret: %v", err)
	}
	if sec.Type != "helm.sh/release.v1" || sec.Labels["owner"] != "helm" || sec.Labels["name"] != helmRelName || sec.Labels["version"] != fmt.Sprint(v) {
		t.Errorf("Secret %s: type %q labels %v, want type helm.sh/release.v1, owner helm, name %s, version %d", name, sec.Type, sec.Labels, helmRelName, v)
	}
	return sec
}
