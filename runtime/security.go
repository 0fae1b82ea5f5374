package runtime

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// SecurityContext is a container's effective security settings, the pod's
// values already merged in as Kubernetes merges them.
type SecurityContext struct {
	// RunAsUser replaces the image's user; the primary group is then
	// RunAsGroup, or 0 (the image's /etc/passwd is not consulted).
	RunAsUser *int64
	// RunAsGroup replaces the primary group.
	RunAsGroup *int64
	// SupplementalGroups are added to the process' groups (a pod's fsGroup
	// among them).
	SupplementalGroups []int64
	// RunAsNonRoot refuses to start a process whose user is root, or one
	// the image names without a numeric id (ErrInvalid).
	RunAsNonRoot bool
	// ReadOnlyRootFS mounts the image's root filesystem read-only.
	ReadOnlyRootFS bool
	// Privileged gives every capability and lifts the masked and
	// read-only paths, seccomp and the sysfs and cgroupfs read-only mounts.
	Privileged bool
	// CapAdd and CapDrop are capability names as Kubernetes writes them
	// (without the CAP_ prefix; ALL for every one). Drops win over adds.
	CapAdd, CapDrop []string
	// NoNewPrivileges sets no_new_privs: allowPrivilegeEscalation false.
	NoNewPrivileges bool
}

// invalidError is a refusal whose message is shown as is (as the kubelet
// words it) and that matches ErrInvalid.
type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// checkNonRoot refuses, when sc asks for a non-root user, a process that
// would run as root or as a user the image names (whose id cannot be
// known before the process starts), with the kubelet's messages.
func checkNonRoot(sc SecurityContext, imageUser string) error {
	if !sc.RunAsNonRoot {
		return nil
	}
	if sc.RunAsUser != nil {
		if *sc.RunAsUser == 0 {
			return invalidError("container's runAsUser breaks non-root policy")
		}
		return nil
	}
	user, _, _ := strings.Cut(imageUser, ":")
	if user == "" {
		return invalidError("container has runAsNonRoot and image will run as root")
	}
	uid, err := strconv.ParseUint(user, 10, 32)
	if err != nil {
		return invalidError(fmt.Sprintf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root", user))
	}
	if uid == 0 {
		return invalidError("container has runAsNonRoot and image will run as root")
	}
	return nil
}

// securityOpts returns the spec options of sc, applied after the image's
// configuration; imageUser is the image's USER, checked for RunAsNonRoot.
func securityOpts(sc SecurityContext, imageUser string) ([]oci.SpecOpts, error) {
	if err := checkNonRoot(sc, imageUser); err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{withUser(sc)}
	if sc.Privileged {
		opts = append(opts, oci.WithPrivileged)
	}
	opts = append(opts, capabilityOpts(sc.CapAdd, sc.CapDrop)...)
	if sc.ReadOnlyRootFS {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	// Set both ways: containerd's default spec has no_new_privs on,
	// Kubernetes has it off unless allowPrivilegeEscalation is false.
	return append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.NoNewPrivileges = sc.NoNewPrivileges
		return nil
	}), nil
}

// withUser sets the process' user and groups from sc over the image's.
func withUser(sc SecurityContext) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		u := &s.Process.User
		if sc.RunAsUser != nil {
			u.UID, u.GID, u.Username = uint32(*sc.RunAsUser), 0, ""
		}
		if sc.RunAsGroup != nil {
			u.GID = uint32(*sc.RunAsGroup)
		}
		gids := []uint32{u.GID}
		if sc.RunAsUser == nil && sc.RunAsGroup == nil {
			// The image's user keeps the groups containerd found for it.
			gids = append(gids, u.AdditionalGids...)
		}
		for _, g := range sc.SupplementalGroups {
			gids = append(gids, uint32(g))
		}
		slices.Sort(gids)
		u.AdditionalGids = slices.Compact(gids)
		return nil
	}
}

// capabilityOpts adds and drops capabilities in the order containerd's CRI
// plugin does: ALL added, ALL dropped, then the named adds, then the named
// drops.
func capabilityOpts(add, drop []string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if slices.Contains(add, "ALL") {
		opts = append(opts, oci.WithAllKnownCapabilities)
	}
	if slices.Contains(drop, "ALL") {
		opts = append(opts, oci.WithCapabilities(nil))
	}
	if caps := capNames(add); len(caps) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(caps))
	}
	if caps := capNames(drop); len(caps) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(caps))
	}
	return opts
}

// capNames returns the kernel names (CAP_ prefixed, upper case) of
// Kubernetes capability names, ALL left out.
func capNames(names []string) []string {
	var out []string
	for _, n := range names {
		n = strings.ToUpper(n)
		if n == "ALL" {
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		out = append(out, n)
	}
	return out
}
