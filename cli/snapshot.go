package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/internal/defaults"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/snapshot"
	"github.com/minik-dev/minik/store"
)

// SnapshotCommand returns "minik snapshot": save (through the API of a
// running server), ls, prune and restore (on a data directory).
func SnapshotCommand() *cli.Command {
	dataDir := &cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: defaults.ServerDataDir, EnvVars: []string{"MINIK_DATA_DIR"}, Usage: "the server's data directory"}
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save, list, prune and restore snapshots of the server's store",
		Subcommands: []*cli.Command{
			{
				Name:  "save",
				Usage: "save a snapshot of a running server's store into its DATA/server/snapshots",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "snapshot name (default on-demand-TIME)"},
					&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig of an admin of the server"},
				},
				Action: snapshotSave,
			},
			{
				Name:   "ls",
				Usage:  "list the snapshots in DATA/server/snapshots, newest first",
				Flags:  []cli.Flag{dataDir},
				Action: snapshotList,
			},
			{
				Name:  "prune",
				Usage: "delete all but the newest snapshots",
				Flags: []cli.Flag{
					dataDir,
					&cli.IntFlag{Name: "keep", Value: snapshot.DefaultRetention, Usage: "how many snapshots to keep"},
					&cli.StringFlag{Name: "prefix", Usage: "prune only snapshots whose names start with this"},
				},
				Action: snapshotPrune,
			},
			{
				Name:      "restore",
				Usage:     "make a new data directory whose store is the snapshot FILE",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Required: true, Usage: "the new data directory (missing or empty)"},
					&cli.Int64Flag{Name: "bump-revision", Value: store.DefaultRevisionBump, Usage: "how far the restored revision moves past the snapshot's"},
					&cli.StringFlag{Name: "token", EnvVars: []string{"MINIK_TOKEN"}, Usage: "the join token current when the snapshot was taken, which opens its CA and keys (default: the token file of the data directory the snapshot is in)"},
					tokenFileFlag(),
				},
				Action: snapshotRestore,
			},
		},
	}
}

func snapshotSave(c *cli.Context) error {
	name := c.String("name")
	if name == "" {
		name = "on-demand-" + time.Now().UTC().Format("20060102-150405")
	}
	if err := snapshot.ValidateName(name); err != nil {
		return err
	}
	path := c.String("kubeconfig")
	if path == "" {
		path = ResolveKubeconfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return err
	}
	cfg.Timeout = 0 // a large store takes a while to copy
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	body, err := dc.RESTClient().Post().AbsPath(snapshot.APIPath).Param("name", name).DoRaw(c.Context)
	if err != nil {
		return fmt.Errorf("saving snapshot %q: %w", name, err)
	}
	var m snapshot.Meta
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("saving snapshot %q: reading the answer: %w", name, err)
	}
	fmt.Fprintf(c.App.Writer, "snapshot %s saved: revision %d, %d bytes, %s\n", m.Name, m.Revision, m.Size, m.Path)
	return nil
}

func snapshotList(c *cli.Context) error {
	metas, err := snapshot.List(snapshot.Dir(c.String("data-dir")))
	if err != nil {
		return err
	}
	writeSnapshotTable(c.App.Writer, metas)
	return nil
}

func writeSnapshotTable(w io.Writer, metas []snapshot.Meta) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTIME\tBACKEND\tREVISION\tSIZE\tSHA256")
	for _, m := range metas {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, m.Time.Format(time.RFC3339), m.Backend,
			m.Revision, strconv.FormatInt(m.Size, 10), m.SHA256)
	}
	tw.Flush()
}

func snapshotPrune(c *cli.Context) error {
	if c.Int("keep") < 0 {
		return fmt.Errorf("--keep %d: must be 0 or more", c.Int("keep"))
	}
	deleted, err := snapshot.Prune(snapshot.Dir(c.String("data-dir")), c.String("prefix"), c.Int("keep"))
	for _, m := range deleted {
		fmt.Fprintf(c.App.Writer, "snapshot %s deleted\n", m.Name)
	}
	return err
}

func snapshotRestore(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("restore takes one snapshot FILE, got %d arguments", c.NArg())
	}
	if c.Int64("bump-revision") <= 0 {
		return fmt.Errorf("--bump-revision %d: must be positive", c.Int64("bump-revision"))
	}
	file, dir := c.Args().First(), c.String("data-dir")
	token, err := restoreToken(c, file)
	if err != nil {
		return err
	}
	res, err := snapshot.Restore(c.Context, file, dir, snapshot.RestoreOptions{Bump: c.Int64("bump-revision"), Token: token})
	switch {
	case errors.Is(err, snapshot.ErrTokenRequired):
		return fmt.Errorf("%w: give it with --token-file (or --token)", err)
	case errors.Is(err, pki.ErrWrongToken):
		return fmt.Errorf("%w: give the join token that was current when the snapshot was taken with --token-file (or --token)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "restored %s into %s: snapshot revision %d, store revision %d\n",
		file, dir, res.SnapshotRevision, res.Revision)
	if res.Credentials {
		fmt.Fprintf(c.App.Writer, "the cluster's CA, keys and join token restored into %s\n", dir)
	} else {
		fmt.Fprintf(c.App.Writer, "the snapshot carries no credentials: copy the cluster's tls/ and token into %s, or the server makes a new CA and token\n", dir)
	}
	return nil
}

// restoreToken returns the join token of --token or --token-file, else
// the token kept in the data directory whose snapshot file is
// (DATA/server/snapshots/NAME → DATA/token), else "".
func restoreToken(c *cli.Context, file string) (string, error) {
	token, err := joinToken(c)
	if token != "" || err != nil {
		return token, err
	}
	dataDir := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	if snapshot.Dir(dataDir) != filepath.Dir(file) {
		return "", nil
	}
	data, err := os.ReadFile(filepath.Join(dataDir, pki.TokenFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
