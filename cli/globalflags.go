package cli

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// kubectlName is the name under which the binary acts as kubectl (a link
// named kubectl pointing at minik).
const kubectlName = "kubectl"

// Args rewrites the process's command line (args[0] first) into the form
// the urfave app parses:
//
//   - invoked as "kubectl" (a link to the binary), the whole line goes to
//     the kubectl command tree: "kubectl get pods" runs as
//     "minik kubectl get pods";
//   - kubectl's global flags in front of a client verb move behind it, as
//     kubectl accepts them anywhere: "minik -n kube-system get pods" runs
//     as "minik get -n kube-system pods".
//
// Any other line is returned as it is. The result does not share args'
// backing array.
func Args(args []string) []string {
	if len(args) == 0 {
		return args
	}
	if filepath.Base(args[0]) == kubectlName {
		return append([]string{args[0], kubectlName}, args[1:]...)
	}
	if len(args) < 3 || !strings.HasPrefix(args[1], "-") {
		return append([]string(nil), args...)
	}
	return hoistGlobalFlags(args, kubectlGlobalFlags())
}

// hoistGlobalFlags moves the flags of globals that precede a client verb
// behind the verb. A word that is no flag of globals, or flags followed by
// no client verb, leave args as they are.
func hoistGlobalFlags(args []string, globals *pflag.FlagSet) []string {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		n := globalFlagWords(args[i], globals)
		if n == 0 {
			return append([]string(nil), args...)
		}
		i += n
	}
	if i == 1 || i >= len(args) || !isClientVerb(args[i]) {
		return append([]string(nil), args...)
	}
	out := make([]string, 0, len(args))
	out = append(out, args[0], args[i])
	out = append(out, args[1:i]...)
	return append(out, args[i+1:]...)
}

// globalFlagWords returns how many words the flag word w takes (1 for
// "--flag=value", a boolean flag or a short flag with its value attached,
// 2 when the value is the next word), or 0 when w is no flag of globals.
func globalFlagWords(w string, globals *pflag.FlagSet) int {
	var f *pflag.Flag
	name, attached := strings.TrimPrefix(w, "--"), false
	if name != w {
		if k, _, ok := strings.Cut(name, "="); ok {
			name, attached = k, true
		}
		f = globals.Lookup(name)
	} else {
		short := strings.TrimPrefix(w, "-")
		if short == "" {
			return 0
		}
		f = globals.ShorthandLookup(short[:1])
		attached = len(short) > 1
	}
	switch {
	case f == nil:
		return 0
	case attached || f.NoOptDefVal != "":
		return 1
	}
	return 2
}

// isClientVerb reports whether name is a client command of [Commands].
func isClientVerb(name string) bool {
	if name == kubectlName {
		return true
	}
	for _, v := range verbs {
		if v.name == name {
			return true
		}
	}
	return false
}

// kubectlGlobalFlags returns the flags kubectl's root command accepts
// before any subcommand (--kubeconfig, --context, -n, -s, --token, …).
func kubectlGlobalFlags() *pflag.FlagSet {
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	return newRoot(streams, "minik", nil).PersistentFlags()
}
