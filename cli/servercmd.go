package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/internal/defaults"
	"github.com/minik-dev/minik/server"
	"github.com/minik-dev/minik/server/controllers"
	"github.com/minik-dev/minik/server/manifests"
	"github.com/minik-dev/minik/server/nodes"
	"github.com/minik-dev/minik/server/snapshot"
)

// AllCommands returns every subcommand of the minik binary: server and
// agent (reading [WithConfigFile]'s files), image, snapshot, version, the commands of
// [AdminCommands] and the client commands of [Commands]. version is
// what the binary reports as its own version.
func AllCommands(version string) []*ucli.Command {
	cmds := []*ucli.Command{
		WithConfigFile(serverCommand(version)),
		imageCommand(),
		WithConfigFile(agentCommand(version)),
		SnapshotCommand(),
		{
			Name:  "version",
			Usage: "print the client version",
			Action: func(c *ucli.Context) error {
				fmt.Printf("minik version %s\n", version)
				return nil
			},
		},
	}
	cmds = append(cmds, AdminCommands()...)
	cmds = append(cmds, CertificateCommand(), TokenCommand())
	return append(cmds, Commands()...)
}

func serverCommand(version string) *ucli.Command {
	return &ucli.Command{
		Name:  "server",
		Usage: "run the control plane (and, unless --disable-agent, a local agent)",
		Flags: serverFlags(),
		Action: func(c *ucli.Context) error {
			token, err := joinToken(c)
			if err != nil {
				return err
			}
			cfg := server.Config{
				DataDir:                  c.String("data-dir"),
				HTTPSPort:                c.Int("https-listen-port"),
				BindAddress:              c.String("bind-address"),
				TLSSANs:                  c.StringSlice("tls-san"),
				Token:                    token,
				ClusterCIDR:              c.String("cluster-cidr"),
				ServiceCIDR:              c.String("service-cidr"),
				NodePortRange:            c.String("service-node-port-range"),
				NodeName:                 c.String("node-name"),
				NodeIP:                   c.String("node-ip"),
				DisableAgent:             c.Bool("disable-agent"),
				NodeMonitorGracePeriod:   c.Duration("node-monitor-grace-period"),
				PodEvictionTimeout:       c.Duration("pod-eviction-timeout"),
				TerminatedPodGCThreshold: c.Int("terminated-pod-gc-threshold"),
				HeartbeatInterval:        c.Duration("heartbeat-interval"),
				RestartBackoff:           c.Duration("restart-backoff"),
				RegistriesConfig:         c.String("registries-config"),
				CompactionWindow:         c.Int64("compaction-window"),
				SnapshotSchedule:         c.String("snapshot-schedule"),
				SnapshotRetention:        c.Int("snapshot-retention"),
				DisableManifests:         c.Bool("disable-manifests"),
				ManifestsInterval:        c.Duration("manifests-interval"),
				DisableControllers:       c.StringSlice("disable-controller"),
				WatchWindowBytes:         c.Int("watch-window-mib") << 20,
				WatchCacheBytes:          c.Int("watch-cache-mib") << 20,
				WatchBufferBytes:         c.Int("watch-buffer-mib") << 20,
				DatastoreEndpoint:        c.String("datastore-endpoint"),
				DatastoreCAFile:          c.String("datastore-cafile"),
				DatastoreCertFile:        c.String("datastore-certfile"),
				DatastoreKeyFile:         c.String("datastore-keyfile"),
				NodeRegistrationRate:     c.Float64("node-registration-rate"),
				NodeRegistrationBurst:    c.Int("node-registration-burst"),
				JoinServer:               c.String("server"),
				AdvertiseAddress:         c.String("advertise-address"),
				CertLifetime:             c.Duration(CertLifetimeFlag.Name),
				Version:                  version,
				Logger:                   newLogger(c.Bool("debug")),
			}
			return server.Run(c.Context, cfg)
		},
	}
}

func newLogger(debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func serverFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: defaults.ServerDataDir, EnvVars: []string{"MINIK_DATA_DIR"}, Usage: "where state, certificates and the kubeconfig live"},
		&ucli.IntFlag{Name: "https-listen-port", Value: 6443, EnvVars: []string{"MINIK_HTTPS_LISTEN_PORT"}, Usage: "port of the HTTPS API"},
		&ucli.StringFlag{Name: "bind-address", EnvVars: []string{"MINIK_BIND_ADDRESS"}, Usage: "address the API listens on (default: all)"},
		&ucli.StringSliceFlag{Name: "tls-san", EnvVars: []string{"MINIK_TLS_SAN"}, Usage: "extra host names or IPs for the serving certificate"},
		&ucli.StringFlag{Name: "token", EnvVars: []string{"MINIK_TOKEN"}, Usage: "join token (or its secret part); generated when empty (visible to local users in /proc: prefer --token-file or MINIK_TOKEN)"},
		tokenFileFlag(),
		&ucli.StringFlag{Name: "cluster-cidr", Value: defaults.ClusterCIDR, EnvVars: []string{"MINIK_CLUSTER_CIDR"}, Usage: "pod network; each node gets a slice"},
		&ucli.StringFlag{Name: "service-cidr", Value: defaults.ServiceCIDR, EnvVars: []string{"MINIK_SERVICE_CIDR"}, Usage: "range of Service cluster IPs"},
		&ucli.StringFlag{Name: "service-node-port-range", Value: defaults.NodePortRange, EnvVars: []string{"MINIK_SERVICE_NODE_PORT_RANGE"}, Usage: "range of NodePorts"},
		&ucli.StringFlag{Name: "node-name", EnvVars: []string{"MINIK_NODE_NAME"}, Usage: "name of the local node (default: host name)"},
		&ucli.StringFlag{Name: "node-ip", EnvVars: []string{"MINIK_NODE_IP"}, Usage: "address of the local node"},
		&ucli.DurationFlag{Name: "restart-backoff", Value: 10 * time.Second, EnvVars: []string{"MINIK_RESTART_BACKOFF"}, Usage: "embedded agent: first delay before restarting a crashed container (doubles up to 5m)"},
		&ucli.StringFlag{Name: "registries-config", EnvVars: []string{"MINIK_REGISTRIES_CONFIG"}, Usage: "embedded agent: registry mirrors file, k3s's registries.yaml format (default: DATA/agent/registries.yaml if it exists)"},
		&ucli.BoolFlag{Name: "disable-agent", EnvVars: []string{"MINIK_DISABLE_AGENT"}, Usage: "run the control plane only"},
		&ucli.DurationFlag{Name: "node-monitor-grace-period", Value: 40 * time.Second, EnvVars: []string{"MINIK_NODE_MONITOR_GRACE_PERIOD"}, Usage: "a node without a heartbeat for this long is marked Ready=Unknown"},
		&ucli.DurationFlag{Name: "pod-eviction-timeout", Value: 5 * time.Minute, EnvVars: []string{"MINIK_POD_EVICTION_TIMEOUT"}, Usage: "how long pods stay on an unreachable node before they are deleted"},
		&ucli.IntFlag{Name: "terminated-pod-gc-threshold", Value: controllers.DefaultTerminatedPodGCThreshold, EnvVars: []string{"MINIK_TERMINATED_POD_GC_THRESHOLD"}, Usage: "terminated pods kept before the oldest are deleted (0: no limit)"},
		&ucli.DurationFlag{Name: "heartbeat-interval", Value: 10 * time.Second, EnvVars: []string{"MINIK_HEARTBEAT_INTERVAL"}, Usage: "how often the embedded agent sends heartbeats"},
		&ucli.Float64Flag{Name: "node-registration-rate", Value: nodes.DefaultRegistrationRate, EnvVars: []string{"MINIK_NODE_REGISTRATION_RATE"}, Usage: "node registrations a second allowed per join token after the burst (negative: no limit)"},
		&ucli.IntFlag{Name: "node-registration-burst", Value: nodes.DefaultRegistrationBurst, EnvVars: []string{"MINIK_NODE_REGISTRATION_BURST"}, Usage: "node registrations allowed at once per join token"},
		&ucli.Int64Flag{Name: "compaction-window", Value: 100, EnvVars: []string{"MINIK_COMPACTION_WINDOW"}, Usage: "revisions of history kept at least, beside the last 5 minutes (a revision is compacted once it is past both)"},
		&ucli.IntFlag{Name: "watch-window-mib", Value: 64, EnvVars: []string{"MINIK_WATCH_WINDOW_MIB"}, Usage: "MiB of recent changes the embedded store keeps in memory for watches (older ones are read from disk)"},
		&ucli.IntFlag{Name: "watch-cache-mib", Value: 32, EnvVars: []string{"MINIK_WATCH_CACHE_MIB"}, Usage: "MiB each of the API's three caches of recent changes (decoded, protobuf, JSON) may hold"},
		&ucli.IntFlag{Name: "watch-buffer-mib", Value: 16, EnvVars: []string{"MINIK_WATCH_BUFFER_MIB"}, Usage: "MiB of events a watch may have waiting for its client before it is cut off (the client watches again)"},
		&ucli.StringFlag{Name: "snapshot-schedule", Value: snapshot.DefaultSchedule, EnvVars: []string{"MINIK_SNAPSHOT_SCHEDULE"}, Usage: "when to save a snapshot of the store into DATA/server/snapshots: cron expression in UTC (\"\" = never)"},
		&ucli.IntFlag{Name: "snapshot-retention", Value: snapshot.DefaultRetention, EnvVars: []string{"MINIK_SNAPSHOT_RETENTION"}, Usage: "how many scheduled snapshots to keep"},
		&ucli.BoolFlag{Name: "disable-manifests", EnvVars: []string{"MINIK_DISABLE_MANIFESTS"}, Usage: "do not apply the manifest files of DATA/server/manifests"},
		&ucli.DurationFlag{Name: "manifests-interval", Value: manifests.DefaultInterval, EnvVars: []string{"MINIK_MANIFESTS_INTERVAL"}, Usage: "how often DATA/server/manifests is read for changed files"},
		&ucli.StringSliceFlag{Name: "disable-controller", EnvVars: []string{"MINIK_DISABLE_CONTROLLER"}, Usage: "do not run this controller (repeat or comma-separate; for instance deployment,replicaset to run other implementations of them): " + strings.Join(controllers.Names(), ", ")},
		&ucli.StringFlag{Name: "datastore-endpoint", EnvVars: []string{"MINIK_DATASTORE_ENDPOINT"}, Usage: "etcd client URLs, comma-separated (default: the embedded bbolt store)"},
		&ucli.StringFlag{Name: "datastore-cafile", EnvVars: []string{"MINIK_DATASTORE_CAFILE"}, Usage: "CA certificate that verifies the etcd members (https endpoints)"},
		&ucli.StringFlag{Name: "datastore-certfile", EnvVars: []string{"MINIK_DATASTORE_CERTFILE"}, Usage: "client certificate for etcd"},
		&ucli.StringFlag{Name: "datastore-keyfile", EnvVars: []string{"MINIK_DATASTORE_KEYFILE"}, Usage: "key of the client certificate for etcd"},
		&ucli.StringFlag{Name: "server", EnvVars: []string{"MINIK_SERVER"}, Usage: "join the cluster of this server (https://HOST:PORT), sharing its --datastore-endpoint; needs --token-file (or --token)"},
		&ucli.StringFlag{Name: "advertise-address", EnvVars: []string{"MINIK_ADVERTISE_ADDRESS"}, Usage: "address agents and other servers reach this server at (default: --bind-address, --node-ip or the first host address)"},
		&ucli.BoolFlag{Name: "debug", EnvVars: []string{"MINIK_DEBUG"}, Usage: "log at debug level"},
		CertLifetimeFlag,
	}
}

// errTokenFlags: both --token and --token-file were given.
var errTokenFlags = errors.New("--token (or MINIK_TOKEN) and --token-file (or MINIK_TOKEN_FILE) are mutually exclusive: give one")

// tokenFileFlag is --token-file, which keeps the join token out of the
// command line (and so out of /proc/PID/cmdline).
func tokenFileFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "token-file", EnvVars: []string{"MINIK_TOKEN_FILE"}, Usage: "file holding the join token (e.g. the server's DATA/token); excludes --token"}
}

// joinToken returns the join token of --token or --token-file ("" if
// neither is given). The file's content is trimmed of white space; an
// empty file is an error.
func joinToken(c *ucli.Context) (string, error) {
	token, file := c.String("token"), c.String("token-file")
	switch {
	case file == "":
		return token, nil
	case token != "":
		return "", errTokenFlags
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	token = strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("--token-file %s is empty", file)
	}
	return token, nil
}
