package runtime

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestArgs(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"default"}
	tests := []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image defaults", nil, nil, []string{"/entry", "default"}},
		{"command drops image cmd", []string{"sh"}, nil, []string{"sh"}},
		{"args replace cmd", nil, []string{"x"}, []string{"/entry", "x"}},
		{"command and args", []string{"sh"}, []string{"-c", "true"}, []string{"sh", "-c", "true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Args(ep, cmd, tc.command, tc.args)); diff != "" {
				t.Errorf("Args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"127.0.0.1:5000/test/busybox:1", "127.0.0.1:5000/test/busybox:1"},
	}
	for _, tc := range tests {
		if got, err := NormalizeImage(tc.in); err != nil || got != tc.want {
			t.Errorf("NormalizeImage(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := NormalizeImage("UPPER"); !errors.Is(err, ErrInvalid) {
		t.Errorf("NormalizeImage(UPPER) = %v, want ErrInvalid", err)
	}
}

func TestContainerID(t *testing.T) {
	id := containerID("0b6a1d2c-1111-2222-3333-444455556666", "a-very-long-container-name-that-goes-on-and-on-for-sixty-chars", 12)
	if len(id) > 76 {
		t.Errorf("containerID length %d > 76", len(id))
	}
	if got := containerID("u", "c", 3); got == containerID("u", "c", 4) || got == containerID("u", "d", 3) {
		t.Errorf("containerID collides")
	}
}
