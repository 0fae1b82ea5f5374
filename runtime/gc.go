package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
)

// GC removes every pod for which keep returns false, and every container
// of a pod with no sandbox, with their files and logs. Agents call it after
// adopting what runs, with keep reporting the pods bound to the node.
func (c *Containerd) GC(ctx context.Context, keep func(podUID string) bool) error {
	ctx = c.ctx(ctx)
	ctrs, err := c.client.Containers(ctx, fmt.Sprintf(`labels."%s"`, LabelKind))
	if err != nil {
		return err
	}
	uids := map[string]bool{}
	for _, ctr := range ctrs {
		labels, err := ctr.Labels(ctx)
		if err != nil {
			continue
		}
		uids[labels[LabelPodUID]] = labels[LabelKind] == KindSandbox || uids[labels[LabelPodUID]]
	}
	var errs []error
	for uid, hasSandbox := range uids {
		if hasSandbox && keep(uid) {
			continue
		}
		if err := c.RemovePod(ctx, uid); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.removeStrayDirs(uids, keep))
	return errors.Join(append(errs, c.removeStrayImageVolumes(ctx, keep))...)
}

// removeStrayImageVolumes removes the image volume snapshots of pods that
// are not kept, which RemovePod missed when their directory was gone.
func (c *Containerd) removeStrayImageVolumes(ctx context.Context, keep func(string) bool) error {
	sn := c.client.SnapshotService(c.cfg.Snapshotter)
	var stray []string
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if uid := info.Labels[LabelPodUID]; uid != "" && !keep(uid) {
			stray = append(stray, info.Name)
		}
		return nil
	}, fmt.Sprintf(`labels."%s"`, LabelPodUID))
	if err != nil {
		return err
	}
	var errs []error
	for _, key := range stray {
		if err := sn.Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeStrayDirs deletes pod directories that belong to no known pod.
func (c *Containerd) removeStrayDirs(known map[string]bool, keep func(string) bool) error {
	entries, err := os.ReadDir(filepath.Join(c.cfg.DataDir, "sandboxes"))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if uid := e.Name(); !known[uid] && !keep(uid) {
			errs = append(errs, os.RemoveAll(c.sandboxDir(uid)))
		}
	}
	return errors.Join(errs...)
}
