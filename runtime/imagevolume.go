package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/image-spec/identity"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// imageVolumesFile, in a sandbox's directory, records its image volumes.
const imageVolumesFile = "imagevolumes.json"

// imageVolume is an image volume as recorded for the pod's containers.
type imageVolume struct {
	Image      string
	PullPolicy PullPolicy
}

// readImageVolumes returns the image volumes of the sandbox at dir by
// name; none for a sandbox written before it had any.
func readImageVolumes(dir string) (map[string]imageVolume, error) {
	vols := map[string]imageVolume{}
	data, err := os.ReadFile(filepath.Join(dir, imageVolumesFile))
	if errors.Is(err, os.ErrNotExist) {
		return vols, nil
	}
	if err != nil {
		return nil, err
	}
	return vols, json.Unmarshal(data, &vols)
}

// imageVolumeKey is the snapshot of the image volume name of pod uid.
func imageVolumeKey(uid, name string) string { return "minik-imagevolume-" + uid + "-" + name }

// imageVolumeMount returns the mount at path of an image volume of pod
// uid: a read-only view of the image's file system, made when the first
// container mounts it and shared by the others.
func (c *Containerd) imageVolumeMount(ctx context.Context, uid, name string, v imageVolume, auth []RegistryAuth, path string) (specs.Mount, error) {
	sn := c.client.SnapshotService(c.cfg.Snapshotter)
	key := imageVolumeKey(uid, name)
	ms, err := sn.Mounts(ctx, key)
	if errdefs.IsNotFound(err) {
		img, ierr := c.ensureImage(ctx, v.Image, orDefault(v.PullPolicy), auth)
		if ierr != nil {
			return specs.Mount{}, ierr
		}
		diffIDs, ierr := img.RootFS(ctx)
		if ierr != nil {
			return specs.Mount{}, fmt.Errorf("image %q: %w", v.Image, ierr)
		}
		// A GC root: no container or image refers to the view, and
		// containerd collects what nothing refers to.
		ms, err = sn.View(ctx, key, identity.ChainID(diffIDs).String(), snapshots.WithLabels(map[string]string{
			LabelPodUID: uid, "containerd.io/gc.root": time.Now().UTC().Format(time.RFC3339),
		}))
	}
	if err != nil {
		return specs.Mount{}, fmt.Errorf("image volume %q: %w", name, err)
	}
	if len(ms) != 1 {
		return specs.Mount{}, fmt.Errorf("image volume %q: %d mounts, want one", name, len(ms))
	}
	opts := slices.DeleteFunc(slices.Clone(ms[0].Options), func(o string) bool { return o == "rw" })
	if ms[0].Type == "bind" && !slices.Contains(opts, "rbind") {
		opts = append(opts, "rbind")
	}
	return specs.Mount{Destination: path, Type: ms[0].Type, Source: ms[0].Source, Options: append(opts, "ro")}, nil
}

// removeImageVolumes removes the snapshots of the image volumes of the
// sandbox at dir, of pod uid.
func (c *Containerd) removeImageVolumes(ctx context.Context, uid, dir string) error {
	vols, err := readImageVolumes(dir)
	if err != nil {
		return err
	}
	sn := c.client.SnapshotService(c.cfg.Snapshotter)
	for name := range vols {
		if err := sn.Remove(ctx, imageVolumeKey(uid, name)); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("image volume %q: %w", name, err)
		}
	}
	return nil
}
