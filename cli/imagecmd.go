package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/internal/defaults"
	"github.com/minik-dev/minik/runtime"
)

// imageCommand imports image archives into a node's containerd by hand,
// as the agent does at start for every tar in its images directory.
func imageCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "image",
		Usage: "manage the images of this node",
		Subcommands: []*ucli.Command{{
			Name:      "import",
			Usage:     "import OCI or docker-archive tars into the node's containerd",
			ArgsUsage: "FILE...",
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "data-dir", Value: defaults.AgentDataDir, EnvVars: []string{"MINIK_AGENT_DATA_DIR"}, Usage: "the agent's data dir (the server's embedded agent uses DATA/agent)"},
				&ucli.StringFlag{Name: "containerd-socket", EnvVars: []string{"MINIK_CONTAINERD_SOCKET"}, Usage: "containerd to import into (default: the agent's own)"},
				&ucli.StringFlag{Name: "node-name", EnvVars: []string{"MINIK_NODE_NAME"}, Usage: "the node's name, which names its containerd namespace (default: host name)"},
			},
			Action: importImages,
		}},
	}
}

func importImages(c *ucli.Context) error {
	if c.NArg() == 0 {
		return ucli.Exit("image import: name at least one FILE", 2)
	}
	sock := c.String("containerd-socket")
	if sock == "" {
		sock = filepath.Join(c.String("data-dir"), "containerd", "containerd.sock")
	}
	node := c.String("node-name")
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		node = strings.ToLower(h)
	}
	for _, f := range c.Args().Slice() {
		names, err := runtime.ImportArchive(c.Context, sock, "minik-"+node, "", f)
		if err != nil {
			return ucli.Exit(fmt.Sprintf("image import: %v", err), 1)
		}
		for _, n := range names {
			fmt.Printf("imported %s from %s\n", n, f)
		}
	}
	return nil
}
