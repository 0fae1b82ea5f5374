package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
)

func TestCommands(t *testing.T) {
	var names []string
	for _, c := range Commands() {
		names = append(names, c.Name)
		if !c.SkipFlagParsing {
			t.Errorf("command %q parses its own flags, want SkipFlagParsing", c.Name)
		}
	}
	want := []string{"get", "describe", "apply", "create", "delete", "scale", "logs", "exec",
		"label", "patch", "replace", "cordon", "uncordon", "drain", "kubectl"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Commands() names (-want +got):\n%s", diff)
	}
}

func TestCommandsInApp(t *testing.T) {
	isolate(t)
	tests := []struct {
		args    []string
		wantOut string
		wantErr string
	}{
		{[]string{"minik", "get", "--help"}, "minik get [(-o|--output=)", ""},
		{[]string{"minik", "drain", "--help"}, "Drain node in preparation for maintenance", ""},
		{[]string{"minik", "kubectl", "--help"}, "kubectl controls the Kubernetes cluster manager", ""},
		{[]string{"minik", "kubectl", "logs", "--help"}, "minik kubectl logs [-f]", ""},
		{[]string{"minik", "kubectl", "get", "--bogus"}, "", "See 'minik kubectl get --help' for usage."},
		{[]string{"minik", "delete", "--bogus"}, "", "unknown flag: --bogus"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			var handled error
			app := &cli.App{
				Name:           "minik",
				Commands:       Commands(),
				Writer:         &out,
				ErrWriter:      &errOut,
				ExitErrHandler: func(_ *cli.Context, err error) { handled = err },
			}
			err := app.Run(tc.args)
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("Run(%q) stdout = %q, want it to contain %q", tc.args, out.String(), tc.wantOut)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Run(%q) = %v, want nil", tc.args, err)
				}
				return
			}
			if exitCode(handled) != 1 || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Run(%q) = %v (exit %d), want %q (exit 1)", tc.args, err, exitCode(handled), tc.wantErr)
			}
		})
	}
}
