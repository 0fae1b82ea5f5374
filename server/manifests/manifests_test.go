package manifests

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/store/storetest"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// env is a real API server on a bbolt store, a manifests directory and a
// Manager of it (not running: the tests call Sync).
type env struct {
	t      testing.TB
	ctx    context.Context
	dir    string
	cfg    *rest.Config
	client kubernetes.Interface
	lg     *slog.Logger
	m      *Manager
}

func newEnv(t testing.TB) *env {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := apiserver.New(apiserver.Config{Store: storetest.New(t), Logger: lg, ServiceCIDR: "10.43.0.0/24"})
	if err != nil {
		t.Fatalf("apiserver.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if err := s.EnsureNamespaces(ctx); err != nil {
		t.Fatalf("EnsureNamespaces: %v", err)
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg := s.ServeLoopback(ctx)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	e := &env{t: t, ctx: ctx, dir: filepath.Join(t.TempDir(), "manifests"), cfg: cfg, client: client, lg: lg}
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.m = e.newManager()
	return e
}

// newManager returns a Manager of e's directory whose events are
// written, as a server starting to lead would make.
func (e *env) newManager() *Manager {
	m, err := New(Config{Dir: e.dir, Loopback: e.cfg, Logger: e.lg})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { m.events.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return m
}

func (e *env) write(file, content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, file), []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) remove(file string) {
	e.t.Helper()
	if err := os.Remove(filepath.Join(e.dir, file)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) sync() {
	e.t.Helper()
	if err := e.m.Sync(e.ctx); err != nil {
		e.t.Fatalf("Sync: %v", err)
	}
}

func (e *env) configMap(ns, name string) (*corev1.ConfigMap, error) {
	return e.client.CoreV1().ConfigMaps(ns).Get(e.ctx, name, metav1.GetOptions{})
}

func (e *env) mustConfigMap(ns, name string) *corev1.ConfigMap {
	e.t.Helper()
	cm, err := e.configMap(ns, name)
	if err != nil {
		e.t.Fatalf("configmap %s/%s: %v", ns, name, err)
	}
	return cm
}

func (e *env) wantGone(what string, err error) {
	e.t.Helper()
	if !apierrors.IsNotFound(err) {
		e.t.Errorf("%s: err = %v, want NotFound", what, err)
	}
}

// waitEvent waits for an Event in kube-system of type and reason whose
// message contains each of parts.
func (e *env) waitEvent(eventType, reason string, parts ...string) *corev1.Event {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var seen []string
	for time.Now().Before(deadline) {
		list, err := e.client.CoreV1().Events(RecordNamespace).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			e.t.Fatalf("listing events: %v", err)
		}
		seen = seen[:0]
	events:
		for i, ev := range list.Items {
			seen = append(seen, ev.Type+" "+ev.Reason+": "+ev.Message)
			if ev.Type != eventType || ev.Reason != reason {
				continue
			}
			for _, p := range parts {
				if !strings.Contains(ev.Message, p) {
					continue events
				}
			}
			return &list.Items[i]
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("no %s %s event containing %q within %v; events: %q", eventType, reason, parts, waitTimeout, seen)
	return nil
}

const appV1 = `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: default
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: busybox
`

// appV2 changes the ConfigMap and drops the Deployment.
const appV2 = `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: default
data:
  greeting: bonjour
`

func TestSyncAppliesChangesAndRemoves(t *testing.T) {
	e := newEnv(t)
	e.write("app.yaml", appV1)
	e.sync()

	cm := e.mustConfigMap("default", "app-config")
	if cm.Data["greeting"] != "hello" {
		t.Errorf("greeting = %q, want hello", cm.Data["greeting"])
	}
	if got := cm.Annotations[AnnotationManifest]; got != "app.yaml" {
		t.Errorf("annotation %s = %q, want app.yaml", AnnotationManifest, got)
	}
	if len(cm.ManagedFields) == 0 || cm.ManagedFields[0].Manager != FieldManager || cm.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managedFields = %+v, want an Apply by %s", cm.ManagedFields, FieldManager)
	}
	dep, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("deployment: %v", err)
	}
	rec := e.mustConfigMap(RecordNamespace, "manifest-app.yaml")
	if rec.Labels[LabelRecord] != "true" || rec.Data[keyFile] != "app.yaml" || !strings.Contains(rec.Data[keyObjects], string(dep.UID)) {
		t.Errorf("record = labels %v data %v, want the file and the deployment's UID %s", rec.Labels, rec.Data, dep.UID)
	}
	ev := e.waitEvent(corev1.EventTypeNormal, ReasonApplied, "applied 2 objects from app.yaml")
	if ev.InvolvedObject.Kind != "ConfigMap" || ev.InvolvedObject.Name != "manifest-app.yaml" || ev.InvolvedObject.UID != rec.UID {
		t.Errorf("event about %+v, want the record %s", ev.InvolvedObject, rec.UID)
	}

	// Unchanged content is not applied again.
	before := e.mustConfigMap("default", "app-config").ResourceVersion
	e.sync()
	if after := e.mustConfigMap("default", "app-config").ResourceVersion; after != before {
		t.Errorf("configmap rewritten by a sync of unchanged content: resourceVersion %s → %s", before, after)
	}

	// An edit updates what stays and deletes what left the file.
	e.write("app.yaml", appV2)
	e.sync()
	if got := e.mustConfigMap("default", "app-config").Data["greeting"]; got != "bonjour" {
		t.Errorf("greeting after the edit = %q, want bonjour", got)
	}
	_, err = e.client.AppsV1().Deployments("default").Get(e.ctx, "app", metav1.GetOptions{})
	e.wantGone("deployment dropped from the file", err)

	// Removing the file deletes the rest and the record.
	e.remove("app.yaml")
	e.sync()
	_, err = e.configMap("default", "app-config")
	e.wantGone("configmap of the removed file", err)
	_, err = e.configMap(RecordNamespace, "manifest-app.yaml")
	e.wantGone("record of the removed file", err)
	e.waitEvent(corev1.EventTypeNormal, ReasonRemoved, "app.yaml removed: deleted 1 objects")
}

func TestSyncKeepsPreviousStateOnFailure(t *testing.T) {
	e := newEnv(t)
	e.write("app.yaml", appV1)
	e.sync()

	// A file that does not parse changes nothing and says why.
	e.write("app.yaml", appV2+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: [\n")
	e.sync()
	e.waitEvent(corev1.EventTypeWarning, ReasonApplyFailed, "app.yaml: document 2 (line 9)")
	if got := e.mustConfigMap("default", "app-config").Data["greeting"]; got != "hello" {
		t.Errorf("greeting after a parse error = %q, want hello (unchanged)", got)
	}
	if _, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "app", metav1.GetOptions{}); err != nil {
		t.Errorf("deployment after a parse error: %v", err)
	}

	// A file one object of which the API refuses changes nothing either:
	// not the valid object before it, nor what it dropped.
	e.write("app.yaml", appV2+"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n")
	e.sync()
	e.waitEvent(corev1.EventTypeWarning, ReasonApplyFailed, "app.yaml: document 2 (line 9) ConfigMap default/Not_A_Name", "Invalid")
	if got := e.mustConfigMap("default", "app-config").Data["greeting"]; got != "hello" {
		t.Errorf("greeting after a refused object = %q, want hello (unchanged)", got)
	}
	if _, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "app", metav1.GetOptions{}); err != nil {
		t.Errorf("deployment after a refused object: %v", err)
	}

	// Fixed, the file applies and prunes as usual.
	e.write("app.yaml", appV2)
	e.sync()
	if got := e.mustConfigMap("default", "app-config").Data["greeting"]; got != "bonjour" {
		t.Errorf("greeting after the fix = %q, want bonjour", got)
	}
	_, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "app", metav1.GetOptions{})
	e.wantGone("deployment dropped by the fixed file", err)
}

func TestSyncDeletesOnlyWhatItCreated(t *testing.T) {
	e := newEnv(t)
	// The user's own ConfigMap, which the file then declares too.
	if _, err := e.client.CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config"}, Data: map[string]string{"greeting": "hi"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.write("app.yaml", appV1)
	e.sync()
	if got := e.mustConfigMap("default", "app-config").Data["greeting"]; got != "hello" {
		t.Errorf("greeting = %q, want hello (applied over the user's)", got)
	}
	e.remove("app.yaml")
	e.sync()
	if _, err := e.configMap("default", "app-config"); err != nil {
		t.Errorf("the user's configmap after its file was removed: %v, want it kept", err)
	}
	_, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "app", metav1.GetOptions{})
	e.wantGone("deployment the file created", err)
}

func TestSyncLeavesReplacedObject(t *testing.T) {
	e := newEnv(t)
	e.write("app.yaml", appV2)
	e.sync()
	// The object is deleted and made again by hand: it is no longer the
	// one the file created.
	if err := e.client.CoreV1().ConfigMaps("default").Delete(e.ctx, "app-config", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.remove("app.yaml")
	e.sync()
	if _, err := e.configMap("default", "app-config"); err != nil {
		t.Errorf("configmap made by hand after the file's: %v, want it kept", err)
	}
}

func TestSyncAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.write("app.yaml", appV1)
	e.write("other.yml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n")
	e.sync()
	// The file goes while no server leads; the next leader starts from
	// the records.
	e.remove("app.yaml")
	e.m = e.newManager()
	e.sync()
	_, err := e.configMap("default", "app-config")
	e.wantGone("configmap of the file removed during the restart", err)
	_, err = e.client.AppsV1().Deployments("default").Get(e.ctx, "app", metav1.GetOptions{})
	e.wantGone("deployment of the file removed during the restart", err)
	if _, err := e.client.CoreV1().Namespaces().Get(e.ctx, "other", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace of the file kept: %v", err)
	}
}

func TestSyncList(t *testing.T) {
	e := newEnv(t)
	e.write("list.json", `{"apiVersion":"v1","kind":"List","items":[
		{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"tools"}},
		{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"tools"}}]}`)
	e.write("README.md", "not a manifest")
	e.sync()
	if _, err := e.configMap("tools", "a"); err != nil {
		t.Errorf("configmap in the namespace created by the same file: %v", err)
	}
}

const crdAndWidget = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  size: 3
`

// A custom resource whose definition comes earlier in the same file is
// applied in the same sync, once the API serves its kind.
func TestSyncDefinitionAndCustomResource(t *testing.T) {
	e := newEnv(t)
	e.write("widgets.yaml", crdAndWidget)
	path := "/apis/example.com/v1/namespaces/default/widgets/w"
	e.sync()
	if err := e.m.objects.rest.Get().AbsPath(path).Do(e.ctx).Error(); err != nil {
		t.Fatalf("widget after the sync that applied its definition: %v", err)
	}
	e.waitEvent(corev1.EventTypeNormal, ReasonApplied, "applied 2 objects from widgets.yaml")
	e.remove("widgets.yaml")
	e.sync()
	err := e.m.objects.rest.Get().AbsPath(path).Do(e.ctx).Error()
	e.wantGone("widget of the removed file", err)
}

// A file whose kind the API does not serve yet is applied again by later
// syncs, its content unchanged, until the kind is served.
func TestSyncRetriesKindNotServedYet(t *testing.T) {
	e := newEnv(t)
	crd, widget, _ := strings.Cut(crdAndWidget, "---\n")
	e.write("a-widget.yaml", widget)
	e.sync()
	e.waitEvent(corev1.EventTypeWarning, ReasonApplyFailed, "a-widget.yaml: document 1 (line 1) Widget w", `no matches for kind "Widget"`)
	e.write("z-crd.yaml", crd)
	path := "/apis/example.com/v1/namespaces/default/widgets/w"
	deadline := time.Now().Add(waitTimeout)
	for {
		e.sync()
		err := e.m.objects.rest.Get().AbsPath(path).Do(e.ctx).Error()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("widget not applied within %v: %v", waitTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.waitEvent(corev1.EventTypeNormal, ReasonApplied, "applied 1 objects from a-widget.yaml")
}

// A file that cannot be read is reported and keeps what it applied: it
// is not taken for a removed one.
func TestSyncKeepsUnreadableFile(t *testing.T) {
	e := newEnv(t)
	e.write("app.yaml", appV2)
	e.sync()
	e.remove("app.yaml")
	p := filepath.Join(e.dir, "app.yaml")
	if err := os.Symlink(p, p); err != nil { // a loop: stat fails with ELOOP
		t.Fatal(err)
	}
	e.sync()
	e.waitEvent(corev1.EventTypeWarning, ReasonApplyFailed, "app.yaml: ", "too many levels of symbolic links")
	if _, err := e.configMap("default", "app-config"); err != nil {
		t.Errorf("configmap of the unreadable file: %v, want it kept", err)
	}
	if _, err := e.configMap(RecordNamespace, "manifest-app.yaml"); err != nil {
		t.Errorf("record of the unreadable file: %v, want it kept", err)
	}
}
