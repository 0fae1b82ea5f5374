package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	for _, tc := range []struct {
		data string
		perm fs.FileMode
	}{{"first", 0o600}, {"second, longer", 0o644}, {"", 0o640}} {
		if err := Write(name, []byte(tc.data), tc.perm); err != nil {
			t.Fatalf("Write(%q) = %v", tc.data, err)
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != tc.data {
			t.Errorf("after Write(%q): file holds %q, %v", tc.data, got, err)
		}
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != tc.perm {
			t.Errorf("after Write(%q): mode %v, %v; want %v", tc.data, fi.Mode().Perm(), err, tc.perm)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v, %v; want only the file", entries, err)
	}
}

// A write that cannot complete leaves the old file and no temporary one.
func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := Write(name, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory cannot be renamed over by a file.
	target := filepath.Join(dir, "d")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("new"), 0o644); err == nil {
		t.Fatal("Write over a directory = nil, want an error")
	}
	if got, err := os.ReadFile(name); err != nil || string(got) != "old" {
		t.Errorf("other file holds %q, %v; want old", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2 (no temporary file left)", len(entries))
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Write into a missing directory = %v, want %v", err, fs.ErrNotExist)
	}
}
