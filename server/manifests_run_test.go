package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/manifests"
	"github.com/minik-dev/minik/store/storetest"
)

// writeManifest puts a manifest of one ConfigMap named name into the
// manifests directory of dataDir.
func writeManifest(t *testing.T, dataDir, file, name string) {
	t.Helper()
	dir := manifests.Dir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
	if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Of two servers on one etcd only the leader applies its manifests; when
// it stops, the next leader applies its own and deletes what only the
// first one's files declared.
func TestRunManifestsOnLeaderOnly(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	cfg := Config{
		HTTPSPort: 0, BindAddress: "127.0.0.1", DisableAgent: true,
		ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", Version: "test",
		DatastoreEndpoint: endpoint, ManifestsInterval: 100 * time.Millisecond,
	}
	a, b := cfg, cfg
	a.DataDir, a.HTTPSPort = t.TempDir(), freePort(t)
	writeManifest(t, a.DataDir, "a.yaml", "from-a")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stopA := stoppable(t, ctx, a)
	cs, _ := adminClient(ctx, t, filepath.Join(a.DataDir, "admin.kubeconfig"))
	cms := cs.CoreV1().ConfigMaps("default")
	eventually(ctx, t, "the leader's manifest applied", func() error {
		_, err := cms.Get(ctx, "from-a", metav1.GetOptions{})
		return err
	})

	token, err := os.ReadFile(filepath.Join(a.DataDir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	b.DataDir, b.HTTPSPort = t.TempDir(), freePort(t)
	b.Token, b.JoinServer = strings.TrimSpace(string(token)), fmt.Sprintf("https://127.0.0.1:%d", a.HTTPSPort)
	writeManifest(t, b.DataDir, "b.yaml", "from-b")
	stoppable(t, ctx, b)
	adminClient(ctx, t, filepath.Join(b.DataDir, "admin.kubeconfig"))
	// A file the leader gets after the follower is up: by the time it is
	// applied, the follower has had as long to apply its own.
	writeManifest(t, a.DataDir, "a2.yaml", "from-a2")
	eventually(ctx, t, "the leader's second manifest applied", func() error {
		_, err := cms.Get(ctx, "from-a2", metav1.GetOptions{})
		return err
	})
	if _, err := cms.Get(ctx, "from-b", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the follower's manifest while it follows: err = %v, want NotFound", err)
	}

	stopA()
	bcs, _ := adminClient(ctx, t, filepath.Join(b.DataDir, "admin.kubeconfig"))
	bcms := bcs.CoreV1().ConfigMaps("default")
	eventually(ctx, t, "the new leader's manifest applied, the old one's deleted", func() error {
		if _, err := bcms.Get(ctx, "from-b", metav1.GetOptions{}); err != nil {
			return err
		}
		for _, name := range []string{"from-a", "from-a2"} {
			if _, err := bcms.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("configmap %s: err = %v, want NotFound", name, err)
			}
		}
		return nil
	})
}

// stoppable runs cfg like runServer but returns a function that stops it
// and waits for Run to return.
func stoppable(t *testing.T, parent context.Context, cfg Config) func() {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	t.Cleanup(stop)
	return stop
}
