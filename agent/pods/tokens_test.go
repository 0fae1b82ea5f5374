package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// fakeTokens issues "token-N" tokens valid for the seconds asked, from
// clock, or fails while failing is set.
type fakeTokens struct {
	clock *clock

	mu        sync.Mutex
	calls     int
	audiences []string
	failing   bool
}

func (f *fakeTokens) PodToken(_ context.Context, pod *corev1.Pod, audience string, seconds int64) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return "", time.Time{}, errors.New("server unreachable")
	}
	f.calls++
	f.audiences = append(f.audiences, audience)
	return fmt.Sprintf("%s/%s-token-%d", pod.Spec.ServiceAccountName, pod.Name, f.calls), f.clock.Now().Add(time.Duration(seconds) * time.Second), nil
}

func (f *fakeTokens) setFailing(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = v
}

// tokenPod is a pod running as service account robot with a projected
// volume holding a token for audience vault that lasts seconds.
func tokenPod(seconds int64) *corev1.Pod {
	pod := newPod("web", "")
	pod.Spec.ServiceAccountName = "robot"
	pod.Spec.Volumes = []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: mode(0o644),
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: "vault", ExpirationSeconds: &seconds, Path: "token"}}},
	}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}}
	return pod
}

// The worker writes the token into the volume, keeps it while it is
// fresh and writes a new one once 80% of its lifetime has passed.
func TestTokenVolumeWrittenAndRefreshed(t *testing.T) {
	clk := &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	src := &fakeTokens{clock: clk}
	pod := tokenPod(3607)
	h := start(t, Config{Tokens: src, Now: clk.Now, DataDir: t.TempDir()}, pod)
	t.Cleanup(func() {
		// The volume's tmpfs goes before the data directory does.
		h.stop(t)
		if err := h.m.removeVolumes(pod.UID); err != nil {
			t.Error(err)
		}
	})
	file := filepath.Join(h.m.volumeDir(pod.UID, "creds"), "token")
	waitFile(t, file, "robot/web-token-1")
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("token file mode = %v (%v), want 0644", info.Mode(), err)
	}
	h.m.SetPods([]*corev1.Pod{bump(pod)}) // rewrites the volume: the token is kept
	clk.Add(3607 * time.Second / 2)
	h.rep.waitStatus(t, pod.UID, 10*time.Second, "running", phaseIs(corev1.PodRunning))
	if got := readFile(file); got != "robot/web-token-1" {
		t.Errorf("token at half its lifetime = %q, want the first one", got)
	}
	clk.Add(3607*time.Second*3/10 + time.Second)
	waitFile(t, file, "robot/web-token-2")
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.audiences[0] != "vault" {
		t.Errorf("audience asked = %q, want vault", src.audiences[0])
	}
}

func TestTokenCacheRenewal(t *testing.T) {
	clk := &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	src := &fakeTokens{clock: clk}
	c := newTokenCache(src, clk.Now)
	pod := tokenPod(3600)
	p := pod.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken
	get := func() (string, error) { return c.get(context.Background(), pod, p) }

	if tok, err := get(); err != nil || tok != "robot/web-token-1" {
		t.Fatalf("get = %q, %v; want the first token", tok, err)
	}
	at := c.refreshAt(pod.UID)
	if want := clk.Now().Add(48 * time.Minute); at.After(want) || at.Before(want.Add(-tokenMaxJitter)) {
		t.Errorf("refreshAt = %v, want within %v before %v", at, tokenMaxJitter, want)
	}
	src.setFailing(true)
	clk.Add(50 * time.Minute)
	if tok, err := get(); err != nil || tok != "robot/web-token-1" {
		t.Errorf("get with the server away, token still valid = %q, %v; want the held token", tok, err)
	}
	clk.Add(11 * time.Minute)
	if _, err := get(); err == nil {
		t.Error("get with the server away and the token expired succeeded")
	}
	src.setFailing(false)
	if tok, err := get(); err != nil || tok != "robot/web-token-2" {
		t.Errorf("get once the server is back = %q, %v; want a new token", tok, err)
	}
	c.forget(pod.UID)
	if at := c.refreshAt(pod.UID); !at.IsZero() {
		t.Errorf("refreshAt after forget = %v, want zero", at)
	}
}

// A token that lasts longer than a day is renewed after a day.
func TestTokenRefreshTimeCapped(t *testing.T) {
	expiry := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	at := refreshTime(expiry, 48*3600)
	if want := expiry.Add(-24 * time.Hour); at.After(want) || at.Before(want.Add(-tokenMaxJitter)) {
		t.Errorf("refreshTime = %v, want within %v before %v", at, tokenMaxJitter, want)
	}
}

// Without a TokenSource a token projection adds no file.
func TestTokenVolumeWithoutSource(t *testing.T) {
	m := testManager(t, Config{})
	pod := tokenPod(3607)
	got, err := m.volumePayload(context.Background(), pod, &pod.Spec.Volumes[0], &Objects{})
	if err != nil || len(got) != 0 {
		t.Errorf("volumePayload = %v, %v; want no files", payloadStrings(got), err)
	}
}

// waitFile waits for path to hold want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q (%v), want %q", path, b, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
