package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"kubeconfig before the verb", []string{"minik", "--kubeconfig", "F", "get", "pods"}, []string{"minik", "get", "--kubeconfig", "F", "pods"}},
		{"attached value", []string{"minik", "--kubeconfig=F", "get", "pods"}, []string{"minik", "get", "--kubeconfig=F", "pods"}},
		{"short namespace", []string{"minik", "-n", "kube-system", "get", "pods"}, []string{"minik", "get", "-n", "kube-system", "pods"}},
		{"short attached", []string{"minik", "-nkube-system", "get", "pods"}, []string{"minik", "get", "-nkube-system", "pods"}},
		{"several flags", []string{"minik", "-n", "x", "--context", "c", "--insecure-skip-tls-verify", "describe", "pod", "p"},
			[]string{"minik", "describe", "-n", "x", "--context", "c", "--insecure-skip-tls-verify", "pod", "p"}},
		{"before kubectl", []string{"minik", "--kubeconfig", "F", "kubectl", "get", "pods"}, []string{"minik", "kubectl", "--kubeconfig", "F", "get", "pods"}},
		{"value looks like a verb", []string{"minik", "-n", "get", "get", "pods"}, []string{"minik", "get", "-n", "get", "pods"}},
		{"not a client verb", []string{"minik", "--token", "T", "server"}, []string{"minik", "--token", "T", "server"}},
		{"unknown flag", []string{"minik", "--nope", "get", "pods"}, []string{"minik", "--nope", "get", "pods"}},
		{"app flag", []string{"minik", "--help"}, []string{"minik", "--help"}},
		{"no flags", []string{"minik", "get", "pods", "-n", "x"}, []string{"minik", "get", "pods", "-n", "x"}},
		{"flag without verb", []string{"minik", "-n", "x"}, []string{"minik", "-n", "x"}},
		{"invoked as kubectl", []string{"/usr/local/bin/kubectl", "-n", "x", "get", "pods"}, []string{"/usr/local/bin/kubectl", "kubectl", "-n", "x", "get", "pods"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Args(tc.in)); diff != "" {
				t.Errorf("Args(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct{ shell, want string }{
		{"bash", "complete -o bashdefault -o default -F _minik_complete minik"},
		{"zsh", "compdef _minik minik"},
		{"fish", "complete -c minik"},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			var out bytes.Buffer
			app := &cli.App{Name: "minik", Writer: &out, Commands: append(Commands(), AdminCommands()...)}
			if err := app.Run([]string{"minik", "completion", tc.shell}); err != nil {
				t.Fatalf("completion %s: %v", tc.shell, err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("completion %s = %q, want it to contain %q", tc.shell, out.String(), tc.want)
			}
		})
	}
	app := &cli.App{Name: "minik", Writer: &bytes.Buffer{}, Commands: AdminCommands(), ExitErrHandler: func(*cli.Context, error) {}}
	err := app.Run([]string{"minik", "completion", "tcsh"})
	if ec, ok := err.(cli.ExitCoder); !ok || ec.ExitCode() != 2 {
		t.Errorf("completion tcsh = %v, want exit code 2", err)
	}
}
