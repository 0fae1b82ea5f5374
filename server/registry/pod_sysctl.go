package registry

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A sysctl name is dot- or slash-separated segments of lowercase letters,
// digits, '-' and '_', each starting and ending with a letter or digit,
// as Kubernetes requires.
const (
	sysctlSegment   = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
	maxSysctlLength = 253
)

var sysctlName = regexp.MustCompile("^(" + sysctlSegment + "[\\./])*" + sysctlSegment + "$")

// validateSysctls checks spec.securityContext.sysctls: valid names, each
// once, and no namespaced sysctl of a namespace the pod shares with the
// host. Whether the node allows a sysctl is the node's to say.
func validateSysctls(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	if spec.SecurityContext == nil {
		return nil
	}
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, s := range spec.SecurityContext.Sysctls {
		p := path.Index(i).Child("name")
		switch {
		case s.Name == "":
			errs = append(errs, field.Required(p, ""))
		case len(s.Name) > maxSysctlLength || !sysctlName.MatchString(s.Name):
			errs = append(errs, field.Invalid(p, s.Name,
				fmt.Sprintf("must have at most %d characters and match regex %s", maxSysctlLength, sysctlName)))
		case seen[s.Name]:
			errs = append(errs, field.Duplicate(p, s.Name))
		}
		seen[s.Name] = true
		switch ns := sysctlNamespace(s.Name); {
		case ns == "net" && spec.HostNetwork:
			errs = append(errs, field.Invalid(p, s.Name, "may not be specified when 'hostNetwork' is true"))
		case ns == "ipc" && spec.HostIPC:
			errs = append(errs, field.Invalid(p, s.Name, "may not be specified when 'hostIPC' is true"))
		}
	}
	return errs
}

// sysctlNamespace is the Linux namespace a sysctl belongs to, "net" or
// "ipc", or "" for a sysctl of the whole node.
func sysctlNamespace(name string) string {
	name = strings.ReplaceAll(name, "/", ".")
	switch {
	case strings.HasPrefix(name, "net."):
		return "net"
	case strings.HasPrefix(name, "fs.mqueue."), strings.HasPrefix(name, "kernel.shm"),
		strings.HasPrefix(name, "kernel.msg"), name == "kernel.sem":
		return "ipc"
	}
	return ""
}
