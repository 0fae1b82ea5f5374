package cli

import (
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/internal/defaults"
	"github.com/minik-dev/minik/server/pki"
)

// CertLifetimeFlag sets the lifetime of the leaf certificates a server
// issues (serving, admin, nodes'). It is hidden: short lifetimes are for
// tests that watch renewal happen.
var CertLifetimeFlag = &cli.DurationFlag{
	Name:    "cert-lifetime",
	EnvVars: []string{"MINIK_CERT_LIFETIME"},
	Hidden:  true,
	Usage:   "lifetime of issued leaf certificates (default 1 year)",
}

// serverDataDirFlag is the server data directory the certificate and token
// commands work on.
var serverDataDirFlag = &cli.StringFlag{
	Name: "data-dir", Aliases: []string{"d"}, Value: defaults.ServerDataDir, EnvVars: []string{"MINIK_DATA_DIR"},
	Usage: "the server's data directory",
}

// CertificateCommand returns "minik certificate check|rotate", which work
// on a server's data directory: a running server picks rotated
// certificates up by itself.
func CertificateCommand() *cli.Command {
	return &cli.Command{
		Name:     "certificate",
		Usage:    "list or renew the server's certificates",
		Category: "server",
		Subcommands: []*cli.Command{
			{
				Name:   "check",
				Usage:  "list each certificate in the data directory with its expiry and renewal time",
				Flags:  []cli.Flag{serverDataDirFlag},
				Action: checkCertificates,
			},
			{
				Name:   "rotate",
				Usage:  "issue new serving and admin certificates now; a running server uses them within seconds",
				Flags:  []cli.Flag{serverDataDirFlag, CertLifetimeFlag},
				Action: rotateCertificates,
			},
		},
	}
}

func checkCertificates(c *cli.Context) error {
	certs, err := pki.Check(c.String(serverDataDirFlag.Name))
	if err != nil {
		return err
	}
	if len(certs) == 0 {
		return fmt.Errorf("no certificates under %s", c.String(serverDataDirFlag.Name))
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSUBJECT\tEXPIRES\tRENEWS\tREMAINING\tFILE")
	now := time.Now()
	for _, cert := range certs {
		renews := "never"
		if !cert.RenewAt.IsZero() {
			renews = cert.RenewAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", cert.Name, cert.Subject,
			cert.NotAfter.UTC().Format(time.RFC3339), renews, remaining(cert.NotAfter.Sub(now)), cert.Path)
	}
	return w.Flush()
}

// remaining prints d in days past two days, else in whole seconds, or
// "expired".
func remaining(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d > 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.Truncate(time.Second).String()
}

func rotateCertificates(c *cli.Context) error {
	dir := c.String(serverDataDirFlag.Name)
	if err := pki.Rotate(dir, c.Duration(CertLifetimeFlag.Name), slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "rotated the serving and admin certificates under %s\n", dir)
	return nil
}

// TokenCommand returns "minik token rotate", which gives a server's data
// directory a new join token. The running server accepts the new token,
// and refuses the old one, within seconds; joined nodes keep working on
// their certificates.
func TokenCommand() *cli.Command {
	return &cli.Command{
		Name:     "token",
		Usage:    "manage the join token",
		Category: "server",
		Subcommands: []*cli.Command{{
			Name:  "rotate",
			Usage: "write a new join token (DATA/token) and print it",
			Flags: []cli.Flag{serverDataDirFlag},
			Action: func(c *cli.Context) error {
				tok, err := pki.RotateToken(c.String(serverDataDirFlag.Name))
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, tok)
				return nil
			},
		}},
	}
}
