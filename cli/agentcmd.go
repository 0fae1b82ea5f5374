package cli

import (
	"errors"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/agent"
	"github.com/minik-dev/minik/agent/hollow"
	"github.com/minik-dev/minik/agent/servicenet"
	"github.com/minik-dev/minik/internal/defaults"
)

func agentCommand(version string) *ucli.Command {
	return &ucli.Command{
		Name:  "agent",
		Usage: "run a node that joins a server",
		Flags: agentFlags(),
		Action: func(c *ucli.Context) error {
			if c.Bool("cleanup") {
				return servicenet.Cleanup(c.Context)
			}
			token, err := joinToken(c)
			if err != nil {
				return err
			}
			if c.String("join") == "" || token == "" {
				return ucli.Exit("error: --join and --token-file (or --token, or MINIK_TOKEN) are required", 1)
			}
			name := c.String("node-name")
			if name == "" {
				h, err := os.Hostname()
				if err != nil {
					return err
				}
				name = strings.ToLower(h)
			}
			if n := c.Int("hollow"); n > 0 {
				return runHollow(c, n, name, token)
			}
			cfg := agent.Config{
				ServerURL:         c.String("join"),
				Token:             token,
				DataDir:           c.String("data-dir"),
				NodeName:          name,
				NodeIP:            c.String("node-ip"),
				ContainerdSocket:  c.String("containerd-socket"),
				RegistriesConfig:  c.String("registries-config"),
				HeartbeatInterval: c.Duration("heartbeat-interval"),
				RestartBackoff:    c.Duration("restart-backoff"),
				ClusterDNS:        c.String("cluster-dns"),
				ClusterDomain:     c.String("cluster-domain"),
				Version:           version,
				Logger:            newLogger(c.Bool("debug")),
			}
			return joinError(agent.Run(c.Context, cfg), cfg.ServerURL)
		},
	}
}

// runHollow runs n simulated nodes, named NAME-0 … NAME-(n-1), instead
// of a real one.
func runHollow(c *ucli.Context, n int, name, token string) error {
	err := hollow.Run(c.Context, hollow.Config{
		Server:            c.String("join"),
		Token:             token,
		Count:             n,
		NamePrefix:        name,
		DataDir:           c.String("data-dir"),
		HeartbeatInterval: c.Duration("heartbeat-interval"),
		Logger:            newLogger(c.Bool("debug")),
	})
	return joinError(err, c.String("join"))
}

// joinError turns the errors of joining that retrying cannot fix into
// messages that say what to check.
func joinError(err error, server string) error {
	switch {
	case errors.Is(err, agent.ErrTokenRefused):
		return ucli.Exit("error: the server at "+server+" refused the join token (wrong or unknown --token); nothing was registered", 1)
	case errors.Is(err, agent.ErrCAMismatch):
		return ucli.Exit("error: "+err.Error()+"; is --join pointing at the server that issued --token?", 1)
	}
	return err
}

func agentFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "join", Aliases: []string{"server", "s"}, EnvVars: []string{"MINIK_JOIN", "MINIK_URL"}, Usage: "server to join, https://HOST:PORT"},
		&ucli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"MINIK_TOKEN"}, Usage: "join token (the server's DATA/token; visible to local users in /proc: prefer --token-file or MINIK_TOKEN)"},
		tokenFileFlag(),
		&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: defaults.AgentDataDir, EnvVars: []string{"MINIK_DATA_DIR"}, Usage: "where the agent keeps its state"},
		&ucli.StringFlag{Name: "node-name", EnvVars: []string{"MINIK_NODE_NAME"}, Usage: "name of this node (default: host name)"},
		&ucli.StringFlag{Name: "node-ip", EnvVars: []string{"MINIK_NODE_IP"}, Usage: "address of this node"},
		&ucli.StringFlag{Name: "containerd-socket", EnvVars: []string{"MINIK_CONTAINERD_SOCKET"}, Usage: "use this containerd instead of starting one"},
		&ucli.StringFlag{Name: "registries-config", EnvVars: []string{"MINIK_REGISTRIES_CONFIG"}, Usage: "registry mirrors file, k3s's registries.yaml format (default: DATA-DIR/registries.yaml if it exists)"},
		&ucli.DurationFlag{Name: "restart-backoff", Value: 10 * time.Second, EnvVars: []string{"MINIK_RESTART_BACKOFF"}, Usage: "first delay before restarting a crashed container (doubles up to 5m)"},
		&ucli.DurationFlag{Name: "heartbeat-interval", Value: agent.DefaultHeartbeatInterval, EnvVars: []string{"MINIK_HEARTBEAT_INTERVAL"}, Usage: "how often the agent tells the server it is alive"},
		&ucli.StringFlag{Name: "cluster-dns", Value: agent.DefaultClusterDNS.String(), EnvVars: []string{"MINIK_CLUSTER_DNS"}, Usage: "cluster DNS address given to pods (the tenth address of the service CIDR)"},
		&ucli.StringFlag{Name: "cluster-domain", Value: agent.DefaultClusterDomain, EnvVars: []string{"MINIK_CLUSTER_DOMAIN"}, Usage: "DNS domain of services and pods"},
		&ucli.BoolFlag{Name: "cleanup", EnvVars: []string{"MINIK_CLEANUP"}, Usage: "remove the service rules, masquerade chains and pod routes agents made in this network namespace, and exit"},
		&ucli.IntFlag{Name: "hollow", EnvVars: []string{"MINIK_HOLLOW"}, Usage: "run this many simulated nodes (no containers, for scale tests) named NODE-NAME-0, NODE-NAME-1, …; each takes a /24 of the server's --cluster-cidr, so more than 256 need a wider one than the default /16 (e.g. 10.64.0.0/10)"},
		&ucli.BoolFlag{Name: "debug", EnvVars: []string{"MINIK_DEBUG"}, Usage: "log at debug level"},
	}
}
