package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/store"
)

// dirSnapshots saves snapshots of a bbolt store into a directory.
type dirSnapshots struct {
	dir string
	src *store.Bolt
}

func (d dirSnapshots) SaveSnapshot(ctx context.Context, name string) (snapshot.Meta, error) {
	return snapshot.Save(ctx, d.dir, name, snapshot.BackendBolt, time.Now(), d.src)
}

func withSnapshots(dir string) func(*Config) {
	return func(c *Config) { c.Snapshots = dirSnapshots{dir, c.Store.(*store.Bolt)} }
}

// postSnapshot posts a snapshot request with the bearer token tok ("" =
// none) and returns the status code and body.
func postSnapshot(t *testing.T, url, method, name, tok string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url+SnapshotsPath+"?name="+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, SnapshotsPath, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestSnapshotRestoreWatchExpired saves a snapshot through the API,
// writes on, restores the snapshot under a new server and checks that a
// watcher from a revision of the old server gets 410 Expired, the list
// is the snapshot's, and new revisions are above every old one.
func TestSnapshotRestoreWatchExpired(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, withSnapshots(filepath.Join(dir, "snapshots")))
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, testPod("a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, body := postSnapshot(t, ts.url, http.MethodPost, "snap", "")
	if code != http.StatusCreated {
		t.Fatalf("POST %s = %d %s, want 201", SnapshotsPath, code, body)
	}
	var m snapshot.Meta
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	later, err := pods.Create(ctx, testPod("b", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := strconv.ParseInt(later.ResourceVersion, 10, 64)
	if m.Revision >= seen {
		t.Fatalf("snapshot revision %d, want below %d", m.Revision, seen)
	}

	dataDir := filepath.Join(dir, "restored")
	res, err := snapshot.Restore(ctx, m.Path, dataDir, snapshot.RestoreOptions{Bump: 1000})
	if err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	restored, err := store.Open(snapshot.StorePath(dataDir), store.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Close() })
	ts2 := newTestServer(t, func(c *Config) { c.Store = restored })

	resp, sc := rawWatch(t, ts2, "/api/v1/namespaces/default/pods", "resourceVersion="+later.ResourceVersion)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch status = %d, want 200 then an ERROR event", resp.StatusCode)
	}
	ev := readRawEvent(t, sc)
	var st metav1.Status
	json.Unmarshal(ev.Object, &st)
	if ev.Type != "ERROR" || st.Code != http.StatusGone || st.Reason != metav1.StatusReasonExpired {
		t.Errorf("watch from old revision %d: event %s code %d reason %q, want ERROR 410 Expired", seen, ev.Type, st.Code, st.Reason)
	}
	list, err := ts2.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "a" {
		t.Errorf("restored pods = %v, want only a", list.Items)
	}
	if rv, _ := strconv.ParseInt(list.ResourceVersion, 10, 64); rv != res.Revision {
		t.Errorf("restored list resourceVersion = %d, want %d", rv, res.Revision)
	}
	c, err := ts2.client.CoreV1().Pods("default").Create(ctx, testPod("c", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rv, _ := strconv.ParseInt(c.ResourceVersion, 10, 64); rv <= seen {
		t.Errorf("new pod after restore has resourceVersion %d, want above %d", rv, seen)
	}
}

func TestSnapshotEndpointErrors(t *testing.T) {
	ts := newTestServer(t, withSnapshots(filepath.Join(t.TempDir(), "snapshots")))
	ts.cfg.Authenticator = auth.NewAuthenticator(nil, map[string]auth.User{
		"admin": auth.AdminUser,
		"alice": {Name: "alice", Groups: []string{auth.GroupAuthenticated}},
	})
	ts.cfg.Authorizer = &auth.Authorizer{}
	if code, body := postSnapshot(t, ts.url, http.MethodPost, "taken", "admin"); code != http.StatusCreated {
		t.Fatalf("POST taken = %d %s, want 201", code, body)
	}
	for _, tc := range []struct {
		name, method, snap, tok string
		code                    int
		reason                  metav1.StatusReason
	}{
		{"anonymous", http.MethodPost, "x", "", http.StatusUnauthorized, metav1.StatusReasonUnauthorized},
		{"not admin", http.MethodPost, "x", "alice", http.StatusForbidden, metav1.StatusReasonForbidden},
		{"bad name", http.MethodPost, "Bad_Name", "admin", http.StatusUnprocessableEntity, metav1.StatusReasonInvalid},
		{"no name", http.MethodPost, "", "admin", http.StatusUnprocessableEntity, metav1.StatusReasonInvalid},
		{"taken", http.MethodPost, "taken", "admin", http.StatusConflict, metav1.StatusReasonAlreadyExists},
		{"get", http.MethodGet, "x", "admin", http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postSnapshot(t, ts.url, tc.method, tc.snap, tc.tok)
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("%s = %d %s, not a Status", tc.method, code, body)
			}
			if code != tc.code || st.Reason != tc.reason {
				t.Errorf("%s = %d %q, want %d %q (%s)", tc.method, code, st.Reason, tc.code, tc.reason, body)
			}
			if tc.reason == metav1.StatusReasonInvalid && (st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != "name") {
				t.Errorf("Invalid status %s does not name the field name", body)
			}
		})
	}
	metas, err := snapshot.List(ts.cfg.Snapshots.(dirSnapshots).dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 1 {
		t.Errorf("snapshots after the refused requests = %d, want 1", len(metas))
	}
}
