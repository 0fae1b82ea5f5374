package cli

import (
	"runtime/debug"
	"strings"
	_ "unsafe" // for go:linkname

	_ "k8s.io/client-go/pkg/version"
	"k8s.io/component-base/version"
)

// The Kubernetes version variables are normally stamped with -ldflags -X by
// Kubernetes' build scripts. A plain "go build" leaves the placeholder
// "v0.0.0-master+$Format:%H$", which "kubectl version" rejects once it
// compares client and server versions. An unstamped minik therefore
// stamps them at start from the client-go module version (client-go
// v0.X.Y belongs to Kubernetes v1.X.Y). Values given with -X are kept.
//
// component-base/version is what "kubectl version" reports; client-go's
// copy feeds the User-Agent header.
var (
	//go:linkname baseGitVersion k8s.io/component-base/version.gitVersion
	baseGitVersion string
	//go:linkname baseGitMajor k8s.io/component-base/version.gitMajor
	baseGitMajor string
	//go:linkname baseGitMinor k8s.io/component-base/version.gitMinor
	baseGitMinor string

	//go:linkname clientGitVersion k8s.io/client-go/pkg/version.gitVersion
	clientGitVersion string
	//go:linkname clientGitMajor k8s.io/client-go/pkg/version.gitMajor
	clientGitMajor string
	//go:linkname clientGitMinor k8s.io/client-go/pkg/version.gitMinor
	clientGitMinor string
)

// unstamped is the prefix of the placeholder version left by "go build".
const unstamped = "v0.0.0-master"

func init() {
	v, major, minor, ok := kubernetesVersion(clientGoVersion())
	if !ok {
		return
	}
	if strings.HasPrefix(clientGitVersion, unstamped) {
		clientGitVersion, clientGitMajor, clientGitMinor = v, major, minor
	}
	if strings.HasPrefix(baseGitVersion, unstamped) {
		baseGitVersion, baseGitMajor, baseGitMinor = v, major, minor
		// Get reports the copy its own init stored; v equals the new
		// default, so this cannot fail.
		_ = version.SetDynamicVersion(v)
	}
}

// clientGoVersion returns the version of the k8s.io/client-go module
// linked into the binary, or "" when the build carries no module data.
func clientGoVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range info.Deps {
		if m.Path == "k8s.io/client-go" {
			return m.Version
		}
	}
	return ""
}

// kubernetesVersion maps a client-go module version (v0.37.2) to the
// Kubernetes release it belongs to (v1.37.2, "1", "37").
func kubernetesVersion(clientGo string) (v, major, minor string, ok bool) {
	rest, found := strings.CutPrefix(clientGo, "v0.")
	if !found {
		return "", "", "", false
	}
	minor, _, found = strings.Cut(rest, ".")
	if !found || minor == "" {
		return "", "", "", false
	}
	return "v1." + rest, "1", minor, true
}
