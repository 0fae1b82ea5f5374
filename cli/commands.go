package cli

import (
	"github.com/urfave/cli/v2"
)

// verbs are the kubectl subcommands minik offers at its top level, with
// their usage lines.
var verbs = []struct{ name, usage string }{
	{"get", "Display one or many resources"},
	{"describe", "Show details of a specific resource or group of resources"},
	{"apply", "Apply a configuration to a resource by file name or stdin"},
	{"create", "Create a resource from a file or from stdin"},
	{"delete", "Delete resources by file names, stdin, resources and names, or by resources and label selector"},
	{"scale", "Set a new size for a deployment, replica set, or replication controller"},
	{"logs", "Print the logs for a container in a pod"},
	{"exec", "Execute a command in a container"},
	{"label", "Update the labels on a resource"},
	{"patch", "Update fields of a resource"},
	{"replace", "Replace a resource by file name or stdin"},
	{"cordon", "Mark node as unschedulable"},
	{"uncordon", "Mark node as schedulable"},
	{"drain", "Drain node in preparation for maintenance"},
}

// Commands returns minik's client subcommands: one per kubectl verb in
// everyday use (get, describe, apply, create, delete, scale, logs, exec,
// label, patch, replace, cordon, uncordon, drain) plus "kubectl", the whole
// kubectl command tree. Arguments go to kubectl unparsed, so
// "minik get pods -n x -o wide" behaves as "kubectl get pods -n x -o wide".
//
// An action fails with a cli.ExitCoder that carries kubectl's message and
// exit code (for exec, the remote command's exit status). Actions hand
// kubectl the app's Reader, Writer and ErrWriter, though kubectl itself
// reads "-f -" from os.Stdin and prints klog messages to os.Stderr. Actions
// must not run concurrently with each other.
func Commands() []*cli.Command {
	cmds := make([]*cli.Command, 0, len(verbs)+1)
	for _, v := range verbs {
		cmds = append(cmds, &cli.Command{
			Name:            v.name,
			Usage:           v.usage,
			ArgsUsage:       "[kubectl " + v.name + " arguments]",
			Category:        "client",
			SkipFlagParsing: true,
			HideHelp:        true,
			Action:          verbAction("minik", v.name),
			BashComplete:    verbComplete(v.name),
		})
	}
	return append(cmds, &cli.Command{
		Name:            "kubectl",
		Usage:           "Run kubectl",
		ArgsUsage:       "[kubectl arguments]",
		Category:        "client",
		SkipFlagParsing: true,
		HideHelp:        true,
		Action:          verbAction("minik kubectl", ""),
		BashComplete:    verbComplete(""),
	})
}

// verbAction returns an action running the kubectl tree, displayed as
// display, with verb (if any) in front of the command's arguments.
func verbAction(display, verb string) cli.ActionFunc {
	return func(c *cli.Context) error {
		args := c.Args().Slice()
		if verb != "" {
			args = append([]string{verb}, args...)
		}
		return run(c.Context, streamsFrom(c), display, args)
	}
}
