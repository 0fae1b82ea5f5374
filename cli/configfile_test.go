package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ucli "github.com/urfave/cli/v2"
)

// settings is what the test command's action saw.
type settings struct {
	CIDR  string
	Port  int
	Rate  float64
	Debug bool
	Grace time.Duration
	SANs  []string
}

// runWithConfig runs a command with one flag of each kind and returns
// what its action saw.
func runWithConfig(t *testing.T, args ...string) (settings, error) {
	t.Helper()
	var got settings
	cmd := WithConfigFile(&ucli.Command{
		Name: "server",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "cluster-cidr", Value: "10.42.0.0/16", EnvVars: []string{"TEST_CLUSTER_CIDR"}},
			&ucli.IntFlag{Name: "https-listen-port", Value: 6443},
			&ucli.Float64Flag{Name: "rate", Value: 0.5},
			&ucli.BoolFlag{Name: "debug"},
			&ucli.DurationFlag{Name: "grace", Value: 40 * time.Second},
			&ucli.StringSliceFlag{Name: "tls-san", Aliases: []string{"san", "s"}},
		},
		Action: func(c *ucli.Context) error {
			got = settings{CIDR: c.String("cluster-cidr"), Port: c.Int("https-listen-port"), Rate: c.Float64("rate"),
				Debug: c.Bool("debug"), Grace: c.Duration("grace"), SANs: c.StringSlice("tls-san")}
			return nil
		},
	})
	app := &ucli.App{Name: "minik", Commands: []*ucli.Command{cmd}, Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{},
		ExitErrHandler: func(*ucli.Context, error) {}}
	err := app.Run(append([]string{"minik", "server"}, args...))
	return got, err
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFileValues(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	writeFile(t, file, "cluster-cidr: 10.50.0.0/16\nhttps-listen-port: 7443\nrate: 2\ndebug: true\ngrace: 1m\ntls-san: [a.example, 10.0.0.1]\n")
	writeFile(t, filepath.Join(dir, "config.yaml.d", "20-port.yaml"), "https-listen-port: 9443\n")
	writeFile(t, filepath.Join(dir, "config.yaml.d", "10-port.yaml"), "https-listen-port: 8443\n")
	writeFile(t, filepath.Join(dir, "config.yaml.d", "ignored.txt"), "nonsense: [\n")

	tests := []struct {
		name string
		env  string
		args []string
		want settings
	}{
		{"file and drop-ins", "", nil,
			settings{CIDR: "10.50.0.0/16", Port: 9443, Rate: 2, Debug: true, Grace: time.Minute, SANs: []string{"a.example", "10.0.0.1"}}},
		{"environment over file", "10.60.0.0/16", nil,
			settings{CIDR: "10.60.0.0/16", Port: 9443, Rate: 2, Debug: true, Grace: time.Minute, SANs: []string{"a.example", "10.0.0.1"}}},
		{"flag over environment", "10.60.0.0/16", []string{"--cluster-cidr", "10.70.0.0/16", "--tls-san", "b", "--https-listen-port", "1"},
			settings{CIDR: "10.70.0.0/16", Port: 1, Rate: 2, Debug: true, Grace: time.Minute, SANs: []string{"b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("TEST_CLUSTER_CIDR", tc.env)
			}
			got, err := runWithConfig(t, append([]string{"--config", file}, tc.args...)...)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigFileAlias(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, file, "san: [a.example]\n")
	got, err := runWithConfig(t, "--config", file)
	if err != nil || len(got.SANs) != 1 || got.SANs[0] != "a.example" {
		t.Errorf("run with the alias san = %+v, %v; want SANs [a.example]", got, err)
	}
}

func TestConfigFileMissing(t *testing.T) {
	dir := t.TempDir()
	// An explicit file must exist.
	if _, err := runWithConfig(t, "--config", filepath.Join(dir, "none.yaml")); err == nil {
		t.Errorf("run with a missing --config file succeeded, want an error")
	}
	// A missing default path is no error, nor is a missing drop-in dir.
	files, err := configFiles(filepath.Join(dir, "none.yaml"), false)
	if err != nil || len(files) != 0 {
		t.Errorf("configFiles(missing default) = %q, %v; want none, nil", files, err)
	}
	// An empty path reads nothing: defaults apply.
	t.Setenv("MINIK_CONFIG", "")
	got, err := runWithConfig(t)
	if err != nil || got.Port != 6443 {
		t.Errorf("run with MINIK_CONFIG=\"\" = %+v, %v; want the defaults", got, err)
	}
}

func TestConfigFileRefused(t *testing.T) {
	tests := []struct {
		name, data string
		wants      []string // the error names each
	}{
		{"unknown key", "cluster-cidr: 10.1.0.0/16\nnot-a-flag: 1\n", []string{"line 2", `unknown key "not-a-flag"`, "minik server"}},
		{"int as string", "https-listen-port: \"x\"\n", []string{"line 1", `"https-listen-port"`, "must be an integer", `not "x"`}},
		{"bool as number", "debug: 1\n", []string{`"debug"`, "must be true or false"}},
		{"bad duration", "grace: forever\n", []string{`"grace"`, "duration"}},
		{"scalar for list", "tls-san: a.example\n", []string{`"tls-san"`, "must be a list"}},
		{"list for string", "cluster-cidr: [a, b]\n", []string{`"cluster-cidr"`, "must be a single value, not a list"}},
		{"config key", "config: /x\n", []string{`unknown key "config"`}},
		{"short alias", "s: [a]\n", []string{`unknown key "s"`}},
		{"not a mapping", "- a\n- b\n", []string{"want a mapping"}},
		{"two problems", "nope: 1\ndebug: yes please\n", []string{`unknown key "nope"`, `"debug"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, file, tc.data)
			got, err := runWithConfig(t, "--config", file)
			if err == nil {
				t.Fatalf("run with %q succeeded (%+v), want an error", tc.data, got)
			}
			for _, w := range append(tc.wants, file) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if got.Port != 0 {
				t.Errorf("the action ran with %+v after a refused file", got)
			}
		})
	}
}
