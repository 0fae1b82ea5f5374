package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"
)

// The layout install writes and uninstall removes.
const (
	binDir      = "/usr/local/bin"
	kubectlLink = binDir + "/kubectl"
	unitDir     = "/etc/systemd/system"
	configDir   = "/etc/minik"
	serverUnit  = "minik.service"
	agentUnit   = "minik-agent.service"
)

// installPlan is what install writes, relative to root ("/" on a host).
type installPlan struct {
	role    string // "server" or "agent"
	binary  string // where the binary goes
	unit    string // the systemd unit's path
	envFile string // the unit's environment file
	env     []string
}

// newInstallPlan returns the plan for role with the agent's server URL
// and token (the server's token is optional).
func newInstallPlan(root, role, url, token string) (installPlan, error) {
	p := installPlan{role: role, binary: filepath.Join(root, binDir, "minik")}
	switch role {
	case "server":
		p.unit = filepath.Join(root, unitDir, serverUnit)
		p.envFile = filepath.Join(root, configDir, "minik.env")
		if url != "" {
			p.env = append(p.env, "MINIK_SERVER="+url)
		}
	case "agent":
		if url == "" || token == "" {
			return p, errors.New("install agent: --join and --token-file (or --token, or MINIK_TOKEN) are required")
		}
		p.unit = filepath.Join(root, unitDir, agentUnit)
		p.envFile = filepath.Join(root, configDir, "minik-agent.env")
		p.env = append(p.env, "MINIK_URL="+url)
	default:
		return p, fmt.Errorf("install: role %q must be server or agent", role)
	}
	if token != "" {
		p.env = append(p.env, "MINIK_TOKEN="+token)
	}
	return p, nil
}

// unitText is the systemd unit of the plan. KillMode=process lets pods
// outlive a restart of the service, which adopts them again.
func (p installPlan) unitText(binary string) string {
	return fmt.Sprintf(`[Unit]
Description=minik %[1]s
Documentation=https://github.com/minik-dev/minik
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
EnvironmentFile=-%[2]s
ExecStart=%[3]s %[1]s
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
`, p.role, p.envFile, binary)
}

// write puts the binary (a copy of self), the kubectl link, the
// environment file (0600: it holds the token) and the unit in place.
// unitBinary is the binary's path as the unit names it.
func (p installPlan) write(self, unitBinary string) error {
	for _, d := range []string{filepath.Dir(p.binary), filepath.Dir(p.unit), filepath.Dir(p.envFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := copyBinary(self, p.binary); err != nil {
		return err
	}
	if err := linkKubectl(filepath.Join(filepath.Dir(p.binary), "kubectl")); err != nil {
		return err
	}
	env := strings.Join(p.env, "\n")
	if env != "" {
		env += "\n"
	}
	if err := os.WriteFile(p.envFile, []byte(env), 0o600); err != nil {
		return err
	}
	return os.WriteFile(p.unit, []byte(p.unitText(unitBinary)), 0o644)
}

// linkKubectl makes link a symbolic link to minik (beside it), which acts
// as kubectl under that name, unless another kubectl is there already.
func linkKubectl(link string) error {
	target, err := os.Readlink(link)
	switch {
	case err == nil && filepath.Base(target) == "minik":
		return nil
	case err == nil || !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.EINVAL):
		return nil // another kubectl: keep it
	case errors.Is(err, syscall.EINVAL):
		return nil // a regular file: another kubectl
	}
	return os.Symlink("minik", link)
}

// copyBinary copies src to dst through a temporary file renamed into
// place (a running binary cannot be written over), unless they are one
// file.
func copyBinary(src, dst string) error {
	if a, err := os.Stat(src); err == nil {
		if b, err := os.Stat(dst); err == nil && os.SameFile(a, b) {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

func installCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "install",
		Usage:     "install this binary as a systemd service: " + binDir + "/minik, a kubectl link, the unit and its environment file",
		ArgsUsage: "server|agent",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "join", Aliases: []string{"server", "s"}, EnvVars: []string{"MINIK_URL"}, Usage: "agent: the server to join, https://HOST:PORT (server: another server of the cluster)"},
			&ucli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"MINIK_TOKEN"}, Usage: "join token written to the environment file (prefer --token-file)"},
			&ucli.StringFlag{Name: "token-file", EnvVars: []string{"MINIK_TOKEN_FILE"}, Usage: "file holding the join token"},
			&ucli.BoolFlag{Name: "no-start", Usage: "write the files but neither enable nor start the service"},
		},
		Action: func(c *ucli.Context) error {
			token := c.String("token")
			if f := c.String("token-file"); f != "" {
				data, err := os.ReadFile(f)
				if err != nil {
					return ucli.Exit(fmt.Sprintf("install: --token-file: %v", err), 1)
				}
				token = strings.TrimSpace(string(data))
			}
			plan, err := newInstallPlan("/", c.Args().First(), c.String("join"), token)
			if err != nil {
				return ucli.Exit("error: "+err.Error(), 2)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if err := plan.write(self, plan.binary); err != nil {
				return ucli.Exit(fmt.Sprintf("install: %v", err), 1)
			}
			fmt.Fprintf(c.App.Writer, "installed %s, %s and %s\n", plan.binary, plan.unit, plan.envFile)
			if c.Bool("no-start") {
				return nil
			}
			unit := filepath.Base(plan.unit)
			for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", unit}} {
				if out, err := exec.Command("systemctl", args...).CombinedOutput(); err != nil {
					return ucli.Exit(fmt.Sprintf("install: systemctl %s: %v: %s", strings.Join(args, " "), err, out), 1)
				}
			}
			return nil
		},
	}
}
