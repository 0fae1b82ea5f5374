package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/minik-dev/minik/runtime"
)

func TestLoadRegistries(t *testing.T) {
	good := "mirrors:\n  registry.k8s.io:\n    endpoint: [\"http://10.250.0.1:5000\"]\n"
	bad := "mirrors:\n  registry.k8s.io:\n    endpoints: [\"http://10.250.0.1:5000\"]\n"
	tests := []struct {
		name         string
		inDataDir    string // registries.yaml in the data dir ("" = none)
		flagFile     string // contents of the --registries-config file ("" = no flag)
		wantMirrors  int
		wantInvalid  bool
		wantNotExist bool
	}{
		{name: "no file"},
		{name: "data dir file", inDataDir: good, wantMirrors: 1},
		{name: "bad data dir file", inDataDir: bad, wantInvalid: true},
		{name: "flag wins", inDataDir: bad, flagFile: good, wantMirrors: 1},
		{name: "bad flag file", flagFile: bad, wantInvalid: true},
		{name: "missing flag file", flagFile: "-", wantNotExist: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dataDir, other := t.TempDir(), t.TempDir()
			if tc.inDataDir != "" {
				write(t, filepath.Join(dataDir, runtime.RegistriesFile), tc.inDataDir)
			}
			path := ""
			if tc.flagFile != "" {
				path = filepath.Join(other, "mirrors.yaml")
				if tc.flagFile != "-" {
					write(t, path, tc.flagFile)
				}
			}
			r, err := LoadRegistries(dataDir, path)
			switch {
			case tc.wantInvalid:
				if !errors.Is(err, runtime.ErrInvalid) {
					t.Errorf("LoadRegistries = %v, want runtime.ErrInvalid", err)
				}
			case tc.wantNotExist:
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("LoadRegistries = %v, want os.ErrNotExist", err)
				}
			case err != nil:
				t.Errorf("LoadRegistries = %v", err)
			case len(r.Mirrors) != tc.wantMirrors:
				t.Errorf("LoadRegistries mirrors = %v, want %d", r.Mirrors, tc.wantMirrors)
			}
		})
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
