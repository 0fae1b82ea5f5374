// Command minik is a Kubernetes-style cluster in one binary: the server
// (control plane), the node agent and the client commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/minik-dev/minik/cli"
	"github.com/minik-dev/minik/runtime"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0-dev"

func main() {
	// A pod sandbox runs this binary as its pause process.
	if len(os.Args) > 1 && os.Args[1] == runtime.PauseArg {
		runtime.PauseMain()
		return
	}
	app := &ucli.App{
		Name:                 "minik",
		Usage:                "a Kubernetes-style cluster in one binary",
		Version:              version,
		EnableBashCompletion: true,
		Commands:             cli.AllCommands(version),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.RunContext(ctx, cli.Args(os.Args))
	stop()
	if err != nil {
		code := 1
		if ec, ok := err.(ucli.ExitCoder); ok {
			code = ec.ExitCode()
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, msg)
			}
		} else {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(code)
	}
}
