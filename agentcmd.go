package main

import (
	"time"

	"errors"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/agent"
)

func agentCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "agent",
		Usage: "run a node that joins a server",
		Flags: agentFlags(),
		Action: func(c *ucli.Context) error {
			name := c.String("node-name")
			if name == "" {
				h, err := os.Hostname()
				if err != nil {
					return err
				}
				name = strings.ToLower(h)
			}
			cfg := agent.Config{
				ServerURL:         c.String("join"),
				Token:             c.String("token"),
				DataDir:           c.String("data-dir"),
				NodeName:          name,
				NodeIP:            c.String("node-ip"),
				ContainerdSocket:  c.String("containerd-socket"),
				HeartbeatInterval: c.Duration("heartbeat-interval"),
				RestartBackoff:    c.Duration("restart-backoff"),
				Version:           version,
				Logger:            newLogger(c.Bool("debug")),
			}
			err := agent.Run(c.Context, cfg)
			switch {
			case errors.Is(err, agent.ErrTokenRefused):
				return ucli.Exit("error: the server at "+cfg.ServerURL+" refused the join token (wrong or unknown --token); nothing was registered", 1)
			case errors.Is(err, agent.ErrCAMismatch):
				return ucli.Exit("error: "+err.Error()+"; is --join pointing at the server that issued --token?", 1)
			}
			return err
		},
	}
}

func agentFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "join", Aliases: []string{"server", "s"}, Required: true, EnvVars: []string{"MINIK_JOIN", "MINIK_URL"}, Usage: "server to join, https://HOST:PORT"},
		&ucli.StringFlag{Name: "token", Aliases: []string{"t"}, Required: true, EnvVars: []string{"MINIK_TOKEN"}, Usage: "join token (the server's DATA/token)"},
		&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: "/var/lib/minik/agent", EnvVars: []string{"MINIK_DATA_DIR"}, Usage: "where the agent keeps its state"},
		&ucli.StringFlag{Name: "node-name", EnvVars: []string{"MINIK_NODE_NAME"}, Usage: "name of this node (default: host name)"},
		&ucli.StringFlag{Name: "node-ip", EnvVars: []string{"MINIK_NODE_IP"}, Usage: "address of this node"},
		&ucli.StringFlag{Name: "containerd-socket", EnvVars: []string{"MINIK_CONTAINERD_SOCKET"}, Usage: "use this containerd instead of starting one"},
		&ucli.DurationFlag{Name: "restart-backoff", Value: 10 * time.Second, EnvVars: []string{"MINIK_RESTART_BACKOFF"}, Usage: "first delay before restarting a crashed container (doubles up to 5m)"},
		&ucli.DurationFlag{Name: "heartbeat-interval", Value: agent.DefaultHeartbeatInterval, EnvVars: []string{"MINIK_HEARTBEAT_INTERVAL"}, Usage: "how often the agent tells the server it is alive"},
		&ucli.BoolFlag{Name: "debug", EnvVars: []string{"MINIK_DEBUG"}, Usage: "log at debug level"},
	}
}
