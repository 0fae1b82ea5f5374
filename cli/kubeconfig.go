package cli

import (
	"os"
	"strings"

	"github.com/minik-dev/minik/internal/defaults"
)

// DefaultKubeconfig is the admin kubeconfig written by a server that runs
// with the default data directory. Client commands use it when neither
// --kubeconfig, $KUBECONFIG nor $MINIK_KUBECONFIG names one.
const DefaultKubeconfig = defaults.Kubeconfig

// kubeconfigFlag is kubectl's global flag naming the kubeconfig file.
const kubeconfigFlag = "--kubeconfig"

// ResolveKubeconfig returns the kubeconfig path client commands use when
// args carry no --kubeconfig flag: $KUBECONFIG (which may be a list of
// paths), else $MINIK_KUBECONFIG, else DefaultKubeconfig if it exists. It
// returns "" when none applies, leaving the choice to kubectl's default
// (~/.kube/config). It is safe to call concurrently.
func ResolveKubeconfig() string {
	return resolveKubeconfig(os.Getenv, DefaultKubeconfig)
}

func resolveKubeconfig(getenv func(string) string, fallback string) string {
	if p := getenv("KUBECONFIG"); p != "" {
		return p
	}
	if p := getenv("MINIK_KUBECONFIG"); p != "" {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	return ""
}

// hasKubeconfigFlag reports whether args set kubectl's --kubeconfig flag
// before any "--" that ends the flags.
func hasKubeconfigFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == kubeconfigFlag || strings.HasPrefix(a, kubeconfigFlag+"=") {
			return true
		}
	}
	return false
}
