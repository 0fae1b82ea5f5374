package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/agent/teardown"
	"github.com/minik-dev/minik/internal/defaults"
)

// AdminCommands returns the commands that manage minik itself on this
// host: install, killall, uninstall and completion.
func AdminCommands() []*ucli.Command {
	return []*ucli.Command{installCommand(), killallCommand(), uninstallCommand(), completionCommand()}
}

func dataDirFlag() ucli.Flag {
	return &ucli.StringSliceFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"MINIK_DATA_DIR"},
		Usage: "data directories of servers and agents not running now (those running are found; default " + defaults.ServerDataDir + ")"}
}

func nodeNameFlag() ucli.Flag {
	return &ucli.StringSliceFlag{Name: "node-name", EnvVars: []string{"MINIK_NODE_NAME"},
		Usage: "nodes whose cgroups go, besides those of the running agents (default: the host name)"}
}

func killallCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "killall",
		Usage: "stop every minik server, agent, pod, shim and containerd of this host and remove their mounts, links, rules, routes and cgroups",
		Flags: []ucli.Flag{dataDirFlag(), nodeNameFlag()},
		Action: func(c *ucli.Context) error {
			_, err := killall(c)
			return err
		},
	}
}

// killall stops minik's systemd units (so that they do not start minik
// again) and then everything teardown.Run finds.
func killall(c *ucli.Context) (teardown.Result, error) {
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if _, err := exec.LookPath("systemctl"); err == nil {
		// Units that are not loaded fail to stop: nothing to do for them.
		exec.Command("systemctl", "stop", serverUnit, agentUnit).Run()
	}
	res, err := teardown.Run(c.Context, teardown.Config{DataDirs: c.StringSlice("data-dir"), NodeNames: c.StringSlice("node-name"), Logger: lg})
	if err != nil {
		return res, ucli.Exit(fmt.Sprintf("killall: %v", err), 1)
	}
	return res, nil
}

func uninstallCommand() *ucli.Command {
	return &ucli.Command{
		Name: "uninstall",
		Usage: "killall, then remove minik's systemd units, configuration (" + configDir + "), data directories, " +
			"the kubectl link and the binary",
		Flags: []ucli.Flag{dataDirFlag(), nodeNameFlag()},
		Action: func(c *ucli.Context) error {
			res, err := killall(c)
			if err != nil {
				return err
			}
			return uninstall(res.DataDirs)
		},
	}
}

// uninstall removes what install made and the data directories.
func uninstall(dataDirs []string) error {
	var errs []error
	if _, err := exec.LookPath("systemctl"); err == nil {
		for _, u := range []string{serverUnit, agentUnit} {
			exec.Command("systemctl", "disable", u).Run() // absent units fail: fine
		}
	}
	paths := []string{
		filepath.Join(unitDir, serverUnit), filepath.Join(unitDir, agentUnit),
		configDir,
	}
	paths = append(paths, dataDirs...)
	if link, err := os.Readlink(kubectlLink); err == nil && filepath.Base(link) == "minik" {
		paths = append(paths, kubectlLink)
	}
	if self, err := os.Executable(); err == nil {
		paths = append(paths, self)
	}
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
	}
	if _, err := exec.LookPath("systemctl"); err == nil {
		exec.Command("systemctl", "daemon-reload").Run()
	}
	if err := errors.Join(errs...); err != nil {
		return ucli.Exit(fmt.Sprintf("uninstall: %v", err), 1)
	}
	return nil
}
