// Package cli holds minik's bundled client subcommands.
//
// Like k3s bundles kubectl, minik embeds the published kubectl library
// (k8s.io/kubectl): every client subcommand hands its arguments unchanged to
// the matching kubectl cobra command, so flags, output formats and error
// messages are exactly kubectl's.
//
// # Commands
//
// [Commands] returns urfave/cli commands for the everyday verbs (get,
// describe, apply, create, delete, scale, logs, exec, label, patch, replace,
// cordon, uncordon, drain) and "kubectl", which exposes the whole kubectl
// tree. Each command skips urfave flag parsing; kubectl parses the flags.
// [Args] moves kubectl's global flags given before a verb behind it, and
// turns a command line of the binary called "kubectl" into "minik kubectl
// …".
//
// [AdminCommands] manage minik on a host: install (a systemd service),
// killall and uninstall (see package agent/teardown), and completion,
// which prints bash, zsh and fish completion scripts. [WithConfigFile]
// makes server and agent read their flags from /etc/minik/config.yaml.
//
// # Kubeconfig
//
// The kubeconfig is chosen in this order: the --kubeconfig flag, then
// $KUBECONFIG, then $MINIK_KUBECONFIG, then [DefaultKubeconfig] when that
// file exists, and finally kubectl's own default (~/.kube/config).
//
// # Exit status
//
// kubectl reports fatal errors through cmdutil.CheckErr, which would call
// os.Exit. The commands capture those errors instead and return them as
// urfave/cli exit errors carrying kubectl's message and exit code, so main
// decides how the process ends. For exec the code is the remote command's.
package cli
