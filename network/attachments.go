package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Attachment is a pod the node's network holds state for: an address
// lease, maybe port mappings and interfaces.
type Attachment struct {
	PodID     string
	NetNSPath string
	IP        netip.Addr
}

// cacheEntry holds the fields of libcni's cached result that Attachments
// reads.
type cacheEntry struct {
	ContainerID string `json:"containerId"`
	NetworkName string `json:"networkName"`
	IfName      string `json:"ifName"`
	NetNS       string `json:"netns"`
}

// Attachments lists the pods set up and not yet torn down, sorted by pod
// ID, from the result cache in DataDir. After a restart an agent tears down
// the ones whose pods are gone; their addresses stay leased otherwise.
// The caller owns the slice.
func (c *CNI) Attachments(ctx context.Context) ([]Attachment, error) {
	dir := filepath.Join(c.cfg.DataDir, "cache", "results")
	files, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cni cache: %w", err)
	}
	var out []Attachment
	for _, f := range files {
		if !strings.HasPrefix(f.Name(), c.cfg.NetworkName+"-") {
			continue
		}
		a, ok, err := c.readAttachment(ctx, filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Attachment) int { return strings.Compare(a.PodID, b.PodID) })
	return out, nil
}

// cachePath is where libcni caches the result of a pod's ADD.
func (c *CNI) cachePath(podID string) string {
	return filepath.Join(c.cfg.DataDir, "cache", "results", c.cfg.NetworkName+"-"+podID+"-"+podIfName)
}

// readAttachment reads one cache file; ok is false for another network's.
func (c *CNI) readAttachment(ctx context.Context, path string) (a Attachment, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return a, false, nil // torn down meanwhile
	}
	if err != nil {
		return a, false, fmt.Errorf("cni cache: %w", err)
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return a, false, fmt.Errorf("cni cache file %q: %w", path, err)
	}
	if e.NetworkName != c.cfg.NetworkName || e.IfName != podIfName || e.ContainerID == "" {
		return a, false, nil
	}
	a = Attachment{PodID: e.ContainerID, NetNSPath: e.NetNS}
	a.IP, _ = c.PodIP(ctx, e.ContainerID) // zero if the result is unreadable
	return a, true, nil
}
