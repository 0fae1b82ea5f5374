package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/urfave/cli/v2"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8scli "k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// runMu serialises runs: kubectl's fatal-error hook and $KUBECONFIG are
// process-wide.
var runMu sync.Mutex

// errAborted reports a command goroutine that ended without returning,
// which only a fatal error does.
var errAborted = errors.New("kubectl command aborted")

// fatalExit is one fatal error reported through cmdutil.CheckErr.
type fatalExit struct {
	msg  string
	code int
}

// run executes the kubectl command tree with args (the subcommand first,
// as on kubectl's command line) and returns nil, or a cli.ExitCoder
// carrying kubectl's message and exit code. Help and error messages call
// the root command display ("minik" or "minik kubectl"). ctx ending returns
// ctx.Err() without waiting for the command.
func run(ctx context.Context, streams genericiooptions.IOStreams, display string, args []string) error {
	runMu.Lock()
	defer runMu.Unlock()

	if !hasKubeconfigFlag(args) && os.Getenv("KUBECONFIG") == "" {
		if p := ResolveKubeconfig(); p != "" {
			os.Setenv("KUBECONFIG", p)
			defer os.Unsetenv("KUBECONFIG")
		}
	}

	cmd := newRoot(streams, display, args)
	cmd.SetContext(ctx)
	return execute(ctx, func() {
		if err := k8scli.RunNoErrOutput(cmd); err != nil {
			cmdutil.CheckErr(err)
		}
	})
}

// newRoot builds kubectl's root command, displayed as display and set to
// run args.
func newRoot(streams genericiooptions.IOStreams, display string, args []string) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true).
		WithDeprecatedPasswordFlag().
		WithDiscoveryBurst(300).
		WithDiscoveryQPS(50.0).
		WithWarningPrinter(streams)
	cmd := kubectl.NewKubectlCommand(kubectl.KubectlOptions{
		Arguments:   append([]string{"kubectl"}, args...),
		ConfigFlags: flags,
		IOStreams:   streams,
	})
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[cobra.CommandDisplayNameAnnotation] = display
	cmd.SetArgs(args)
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	return cmd
}

// execute runs fn, which reports fatal errors through cmdutil.CheckErr, on
// its own goroutine. A fatal error ends the goroutine that reported it with
// runtime.Goexit (running its deferred calls) instead of the process, and
// execute returns it as a cli.ExitCoder. kubectl reports some fatal errors
// from helper goroutines (cp), so execute returns on the first report
// without waiting for fn.
func execute(ctx context.Context, fn func()) error {
	fatal := make(chan fatalExit, 1)
	cmdutil.BehaviorOnFatal(func(msg string, code int) {
		select {
		case fatal <- fatalExit{msg: msg, code: code}:
		default: // the first report wins, as with os.Exit
		}
		runtime.Goexit()
	})
	defer cmdutil.DefaultBehaviorOnFatal()

	done := make(chan error, 1)
	go func() {
		err := errAborted
		defer func() { done <- err }()
		fn()
		err = nil
	}()

	select {
	case f := <-fatal:
		return exitError(f)
	case err := <-done:
		select {
		case f := <-fatal:
			return exitError(f)
		default:
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func exitError(f fatalExit) cli.ExitCoder {
	return cli.Exit(strings.TrimSuffix(f.msg, "\n"), f.code)
}

// streamsFrom returns the urfave app's streams, falling back to the
// process's own.
func streamsFrom(c *cli.Context) genericiooptions.IOStreams {
	s := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if c == nil || c.App == nil {
		return s
	}
	s.In = orReader(c.App.Reader, s.In)
	s.Out = orWriter(c.App.Writer, s.Out)
	s.ErrOut = orWriter(c.App.ErrWriter, s.ErrOut)
	return s
}

func orReader(r, def io.Reader) io.Reader {
	if r == nil {
		return def
	}
	return r
}

func orWriter(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}
