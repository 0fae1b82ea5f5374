//go:build integration

package test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestIntegrationSnapshotRestore writes objects, saves a snapshot through
// `minik snapshot save`, writes more, stops the server, restores the
// snapshot into a new data directory (the snapshot brings the cluster's
// CA, keys and join token) and starts a server on it: the old admin
// kubeconfig and join token work, the objects are those of the snapshot,
// revisions go on above every one the old server gave out, and a watch
// from one of those gets 410 Gone.
func TestIntegrationSnapshotRestore(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := clientFor(t, s)
	cms := cs.CoreV1().ConfigMaps("default")
	for _, name := range []string{"before-1", "before-2"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": "old"}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, StringData: map[string]string{"password": "hunter2"}}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	out := s.mustMinik("", "snapshot", "save", "--name", "snap1")
	if !strings.Contains(out, "snapshot snap1 saved") {
		t.Fatalf("minik snapshot save printed %q", out)
	}
	file := filepath.Join(s.dataDir, "server", "snapshots", "snap1")
	for _, p := range []string{file, file + ".json"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if out := s.mustMinik("", "snapshot", "ls", "--data-dir", s.dataDir); !strings.Contains(out, "snap1") {
		t.Errorf("minik snapshot ls = %q, want snap1 listed", out)
	}

	// Writes after the snapshot, which the restore must not bring back.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err := cms.Get(ctx, "before-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["v"] = "new"
	last, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := strconv.ParseInt(last.ResourceVersion, 10, 64)
	s.kill()

	// A data directory in use is refused, named, and left alone.
	out, code := s.minik("", "snapshot", "restore", "--data-dir", s.dataDir, file)
	if code == 0 || !strings.Contains(out, s.dataDir) || !strings.Contains(out, "not empty") {
		t.Errorf("restore into the old data dir exited %d: %q, want a refusal naming %s", code, out, s.dataDir)
	}

	// The snapshot carries the cluster's CA, keys and join token, sealed
	// with that token: a wrong one is refused and nothing is written; with
	// none given, restore uses the token of the data directory the
	// snapshot is in.
	oldToken := readToken(t, s)
	r := &serverProc{t: t, bin: s.bin, dataDir: filepath.Join(t.TempDir(), "restored"), port: freePort(t)}
	wrongOut, err := exec.CommandContext(ctx, s.bin, "snapshot", "restore", "--data-dir", r.dataDir, "--token", "not-the-token", file).CombinedOutput()
	if err == nil || !strings.Contains(string(wrongOut), "when the snapshot was taken") {
		t.Errorf("restore with a wrong token: %v, %q; want a refusal asking for the snapshot's token", err, wrongOut)
	}
	if _, err := os.Stat(r.dataDir); !os.IsNotExist(err) {
		t.Errorf("restore with a wrong token left %s: %v", r.dataDir, err)
	}
	restoreOut, err := exec.CommandContext(ctx, s.bin, "snapshot", "restore", "--data-dir", r.dataDir, file).CombinedOutput()
	if err != nil || !strings.Contains(string(restoreOut), "CA, keys and join token restored") {
		t.Fatalf("minik snapshot restore: %v\n%s", err, restoreOut)
	}
	r.start()
	t.Cleanup(r.kill)
	if got := readToken(t, r); got != oldToken {
		t.Errorf("restored server's token %q, want the cluster's %q", got, oldToken)
	}
	// Agents join with the old token: the API and the node protocol of the
	// restored server accept it.
	checkTokens(t, r, "not-the-token", oldToken)
	if err := registerWith(t, r, oldToken, "after-restore"); err != nil {
		t.Errorf("registering a node with the old token on the restored server: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags(r.url(), s.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	rcs := kubernetes.NewForConfigOrDie(cfg)
	list, err := rcs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cm := range list.Items {
		if cm.Name != "kube-root-ca.crt" {
			got[cm.Name] = cm.Data["v"]
		}
	}
	if diff := cmp.Diff(map[string]string{"before-1": "old", "before-2": "old"}, got); diff != "" {
		t.Errorf("restored configmaps (-want +got):\n%s", diff)
	}
	sec, err := rcs.CoreV1().Secrets("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || string(sec.Data["password"]) != "hunter2" {
		t.Errorf("restored secret kept = %v, %v; want password hunter2", sec, err)
	}
	if rv, _ := strconv.ParseInt(list.ResourceVersion, 10, 64); rv <= seen {
		t.Errorf("restored list resourceVersion %d, want above %d, the last one the old server gave out", rv, seen)
	}

	w, err := rcs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: last.ResourceVersion})
	if err != nil {
		t.Fatalf("watch from %s: %v", last.ResourceVersion, err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok || st.Code != http.StatusGone {
			t.Errorf("watch from old revision %d: first event %s %#v, want ERROR 410", seen, ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("no event on a watch from an old revision")
	}
	_, err = rcs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{
		ResourceVersion: last.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Errorf("list at old revision %d = %v, want 410 Expired", seen, err)
	}

	if out := r.mustMinik("", "get", "configmaps", "-o", "name"); !strings.Contains(out, "configmap/before-1") || strings.Contains(out, "configmap/after") {
		t.Errorf("minik get configmaps = %q, want before-1 and not after", out)
	}
}
