package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/store"
)

// runSnapshot runs "minik snapshot args..." and returns its output.
func runSnapshot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "minik", Commands: []*cli.Command{SnapshotCommand()}, Writer: &out, ErrWriter: &out}
	err := app.Run(append([]string{"minik", "snapshot"}, args...))
	return out.String(), err
}

func TestSnapshotCommands(t *testing.T) {
	dataDir := t.TempDir()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := snapshot.Dir(dataDir)
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for i, name := range []string{"old", "new"} {
		if _, err := snapshot.Save(context.Background(), dir, name, snapshot.BackendBolt, at.Add(time.Duration(i)*time.Hour), st); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runSnapshot(t, "ls", "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("snapshot ls = %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "new ") || !strings.HasPrefix(lines[2], "old ") {
		t.Errorf("snapshot ls =\n%s\nwant a header, new, old", out)
	}

	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "token"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no file", []string{"restore", "--data-dir", filepath.Join(t.TempDir(), "x")}, "one snapshot FILE"},
		{"non-empty dir", []string{"restore", "--data-dir", full, filepath.Join(dir, "new")}, full},
		{"bad bump", []string{"restore", "--data-dir", filepath.Join(t.TempDir(), "x"), "--bump-revision", "0", filepath.Join(dir, "new")}, "--bump-revision"},
		{"negative keep", []string{"prune", "--data-dir", dataDir, "--keep", "-1"}, "--keep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runSnapshot(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("snapshot %v = %v, want an error naming %q", tc.args, err, tc.wantErr)
			}
		})
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if out, err := runSnapshot(t, "restore", "--data-dir", restored, filepath.Join(dir, "new")); err != nil {
		t.Fatalf("snapshot restore = %v (%s)", err, out)
	}
	if _, err := os.Stat(snapshot.StorePath(restored)); err != nil {
		t.Errorf("restore wrote no store: %v", err)
	}
	if out, err := runSnapshot(t, "prune", "--data-dir", dataDir, "--keep", "1"); err != nil || !strings.Contains(out, "snapshot old deleted") {
		t.Errorf("snapshot prune --keep 1 = %q, %v; want old deleted", out, err)
	}
}

// sealingStore is a store whose snapshots carry a's credentials.
type sealingStore struct {
	*store.Bolt
	a *pki.Authority
}

func (s sealingStore) SealedCredentials() ([]byte, error) { return pki.Seal(s.a.Shared()) }

// restore opens a snapshot's credentials with the token of the data
// directory the snapshot is in unless --token or --token-file says
// otherwise; a token that does not open them is refused with what to give.
func TestSnapshotRestoreToken(t *testing.T) {
	dataDir := t.TempDir()
	a, err := pki.Ensure(dataDir, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := snapshot.Save(context.Background(), snapshot.Dir(dataDir), "snap", snapshot.BackendBolt, time.Now(), sealingStore{st, a})
	if err != nil {
		t.Fatal(err)
	}
	oldToken := a.Token()
	if _, err := pki.RotateToken(dataDir); err != nil {
		t.Fatal(err)
	}
	if _, err := runSnapshot(t, "restore", "--data-dir", filepath.Join(t.TempDir(), "x"), m.Path); err == nil ||
		!strings.Contains(err.Error(), "when the snapshot was taken") {
		t.Errorf("restore with the data directory's rotated token = %v, want a refusal asking for the token of the snapshot's time", err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(oldToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	out, err := runSnapshot(t, "restore", "--data-dir", restored, "--token-file", tokenFile, m.Path)
	if err != nil || !strings.Contains(out, "CA, keys and join token restored") {
		t.Fatalf("restore --token-file = %q, %v", out, err)
	}
	if got, _ := os.ReadFile(filepath.Join(restored, pki.TokenFile)); strings.TrimSpace(string(got)) != oldToken {
		t.Errorf("restored token file = %q, want %q", got, oldToken)
	}

	// Unrotated, the data directory's own token opens the snapshot.
	if err := os.WriteFile(filepath.Join(dataDir, pki.TokenFile), []byte(oldToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runSnapshot(t, "restore", "--data-dir", filepath.Join(t.TempDir(), "y"), m.Path); err != nil {
		t.Errorf("restore with the data directory's token = %q, %v", out, err)
	}
}
