package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSubPath(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "..2026_01_01", "dir"), 0o755))
	must(os.WriteFile(filepath.Join(root, "..2026_01_01", "key"), []byte("v1"), 0o644))
	must(os.Symlink("..2026_01_01", filepath.Join(root, "..data")))
	must(os.Symlink("..data/key", filepath.Join(root, "key")))
	must(os.Symlink(outside, filepath.Join(root, "escape")))
	must(os.Symlink("../../..", filepath.Join(root, "..2026_01_01", "dir", "up")))
	realRoot, err := filepath.EvalSymlinks(root)
	must(err)

	cases := []struct {
		sub, want string
		err       error
	}{
		{sub: "key", want: filepath.Join(realRoot, "..2026_01_01", "key")},
		{sub: "new/dir", want: filepath.Join(realRoot, "new", "dir")},
		{sub: "..data/dir", want: filepath.Join(realRoot, "..2026_01_01", "dir")},
		{sub: "escape", err: ErrInvalid},
		{sub: "escape/created", err: ErrInvalid},
		{sub: "..data/dir/up/x", err: ErrInvalid},
		{sub: "../x", err: ErrInvalid},
		{sub: "/etc", err: ErrInvalid},
	}
	for _, tc := range cases {
		got, err := subPath(root, tc.sub)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("subPath(%q) = %q, %v; want %q, %v", tc.sub, got, err, tc.want, tc.err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "created")); !os.IsNotExist(err) {
		t.Errorf("a subPath through a link out of the volume created something outside it (stat: %v)", err)
	}
	if fi, err := os.Stat(filepath.Join(realRoot, "new", "dir")); err != nil || !fi.IsDir() {
		t.Errorf("missing subPath not created as a directory: %v", err)
	}
}
