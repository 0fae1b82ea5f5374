package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/server/pki"
)

// runServerCmd runs "minik ARGS..." with the certificate and token
// commands and returns what they printed.
func runServerCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{Name: "minik", Writer: &out, ErrWriter: &errOut,
		Commands: []*cli.Command{CertificateCommand(), TokenCommand()}}
	err := app.Run(append([]string{"minik"}, args...))
	return out.String(), err
}

func TestCertificateAndTokenCommands(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, pki.Options{Hostname: "testhost"}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}

	out, err := runServerCmd(t, "certificate", "check", "--data-dir", dir)
	if err != nil {
		t.Fatalf("certificate check = %v", err)
	}
	for _, name := range []string{"ca ", "serving ", "admin "} {
		if !strings.Contains(out, "\n"+name) {
			t.Errorf("certificate check lists no %q line:\n%s", name, out)
		}
	}

	serving, kubeconfig := read("tls/serving.crt"), read(pki.KubeconfigFile)
	if _, err := runServerCmd(t, "certificate", "rotate", "--data-dir", dir); err != nil {
		t.Fatalf("certificate rotate = %v", err)
	}
	if read("tls/serving.crt") == serving {
		t.Errorf("certificate rotate kept tls/serving.crt")
	}
	if read(pki.KubeconfigFile) == kubeconfig {
		t.Errorf("certificate rotate kept the kubeconfig's admin certificate")
	}

	token := read(pki.TokenFile)
	out, err = runServerCmd(t, "token", "rotate", "--data-dir", dir)
	if err != nil {
		t.Fatalf("token rotate = %v", err)
	}
	if got := read(pki.TokenFile); got == token || got != out {
		t.Errorf("token rotate printed %q and wrote %q; old token %q", out, got, token)
	}

	if _, err := runServerCmd(t, "certificate", "check", "--data-dir", t.TempDir()); err == nil {
		t.Errorf("certificate check of an empty directory = nil error")
	}
}
