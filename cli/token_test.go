package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// TestJoinToken: the agent and the server read the join token from
// --token-file (or MINIK_TOKEN_FILE), which excludes --token.
func TestJoinToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("K10abc::server:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{"--token-file", []string{"--token-file", file}, nil, "K10abc::server:s3cret", false},
		{"MINIK_TOKEN_FILE", nil, map[string]string{"MINIK_TOKEN_FILE": file}, "K10abc::server:s3cret", false},
		{"--token", []string{"--token", "plain"}, nil, "plain", false},
		{"MINIK_TOKEN", nil, map[string]string{"MINIK_TOKEN": "fromenv"}, "fromenv", false},
		{"both flags", []string{"--token", "plain", "--token-file", file}, nil, "", true},
		{"MINIK_TOKEN and --token-file", []string{"--token-file", file}, map[string]string{"MINIK_TOKEN": "x"}, "", true},
		{"empty file", []string{"--token-file", empty}, nil, "", true},
		{"missing file", []string{"--token-file", filepath.Join(dir, "nope")}, nil, "", true},
	}
	for _, cmd := range []struct {
		name  string
		flags []ucli.Flag
	}{{"agent", agentFlags()}, {"server", serverFlags()}} {
		for _, tc := range tests {
			t.Run(cmd.name+"/"+tc.name, func(t *testing.T) {
				t.Setenv("MINIK_TOKEN", "")
				t.Setenv("MINIK_TOKEN_FILE", "")
				for k, v := range tc.env {
					t.Setenv(k, v)
				}
				var got string
				var err error
				app := &ucli.App{Commands: []*ucli.Command{{
					Name: cmd.name, Flags: cmd.flags,
					Action: func(c *ucli.Context) error { got, err = joinToken(c); return nil },
				}}}
				if rerr := app.Run(append([]string{"minik", cmd.name}, tc.args...)); rerr != nil {
					t.Fatalf("running %v: %v", tc.args, rerr)
				}
				if (err != nil) != tc.wantErr || got != tc.want {
					t.Errorf("joinToken(%v) = %q, %v; want %q (error: %v)", tc.args, got, err, tc.want, tc.wantErr)
				}
				if tc.name == "both flags" && !errors.Is(err, errTokenFlags) {
					t.Errorf("joinToken(%v) = %v, want %v", tc.args, err, errTokenFlags)
				}
			})
		}
	}
}
