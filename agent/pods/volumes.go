package pods

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

// API data volumes: configMap, secret, downwardAPI and projected volumes
// are filled by the node from the objects the session delivers, under
// DataDir/pod-volumes/<pod uid>/<volume>, and handed to the runtime as
// host directories. Secret and projected volumes live on a tmpfs of their
// own, so their contents never reach a disk. Each is written with
// writeAtomic and rewritten whenever the pod or the objects change.

// EventFailedMount is the kubelet's event for a volume it cannot set up.
const EventFailedMount = "FailedMount"

// defaultVolumeMode is the mode of volume files when neither the item nor
// the volume sets one (the API defaults defaultMode to it too).
const defaultVolumeMode = 0o644

// podVolumesDir is where the node keeps the API data volumes of every pod.
func (m *Manager) podVolumesDir() string {
	return filepath.Join(m.cfg.DataDir, "pod-volumes")
}

// volumeDir is where the node keeps volume name of pod uid.
func (m *Manager) volumeDir(uid types.UID, name string) string {
	return filepath.Join(m.podVolumesDir(), string(uid), name)
}

// volumeWritten tells whether a version of the volume is on disk, as
// after a restart of the agent.
func (m *Manager) volumeWritten(uid types.UID, name string) bool {
	_, err := os.Lstat(filepath.Join(m.volumeDir(uid, name), dataLink))
	return err == nil
}

// inMemory tells whether v is kept on a tmpfs.
func inMemory(v *corev1.Volume) bool {
	return v.Secret != nil || v.Projected != nil
}

// volumePayload computes the files of an API data volume. A missing
// source that is not optional gives an error wrapping errMissing.
func (m *Manager) volumePayload(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, objs *Objects) (map[string]volumeFile, error) {
	out := map[string]volumeFile{}
	var err error
	switch {
	case v.ConfigMap != nil:
		err = m.configMapFiles(out, pod, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, v.ConfigMap.DefaultMode, objs)
	case v.Secret != nil:
		err = m.secretFiles(out, pod, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, v.Secret.DefaultMode, objs)
	case v.DownwardAPI != nil:
		err = m.downwardFiles(out, pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
	case v.Projected != nil:
		err = m.projectedFiles(ctx, out, pod, v.Name, v.Projected, objs)
	}
	return out, err
}

func fileMode(item, def *int32) fs.FileMode {
	switch {
	case item != nil:
		return fs.FileMode(*item) & fs.ModePerm
	case def != nil:
		return fs.FileMode(*def) & fs.ModePerm
	}
	return defaultVolumeMode
}

// kindKey words the kubelet's message about a missing key of each kind.
var kindKey = map[string]string{"configmap": "config", "secret": "secret"}

// addItems adds data to out, all keys when items is empty, else the listed
// ones at their paths. A listed key that is missing is an error unless
// optional.
func addItems(out map[string]volumeFile, data map[string][]byte, items []corev1.KeyToPath, optional *bool, def *int32, kind string) error {
	if len(items) == 0 {
		for k, d := range data {
			out[k] = volumeFile{data: d, mode: fileMode(nil, def)}
		}
		return nil
	}
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if isTrue(optional) {
				continue
			}
			return missingf("%s references non-existent %s key: %s", kind, kindKey[kind], it.Key)
		}
		out[it.Path] = volumeFile{data: d, mode: fileMode(it.Mode, def)}
	}
	return nil
}

func (m *Manager) configMapFiles(out map[string]volumeFile, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, def *int32, objs *Objects) error {
	cm, err := objs.configMap(pod.Namespace, name)
	if err != nil {
		return optionalMissing(optional, err)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return addItems(out, data, items, optional, def, "configmap")
}

func (m *Manager) secretFiles(out map[string]volumeFile, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, def *int32, objs *Objects) error {
	s, err := objs.secret(pod.Namespace, name)
	if err != nil {
		return optionalMissing(optional, err)
	}
	return addItems(out, s.Data, items, optional, def, "secret")
}

func (m *Manager) downwardFiles(out map[string]volumeFile, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def *int32) error {
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = m.fieldRef(pod, "", it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = m.containerResource(pod, it.ResourceFieldRef)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("downwardAPI item %q: %w", it.Path, err)
		}
		out[it.Path] = volumeFile{data: []byte(v), mode: fileMode(it.Mode, def)}
	}
	return nil
}

// containerResource resolves a downward API volume's resourceFieldRef,
// which names its container.
func (m *Manager) containerResource(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) (string, error) {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == ref.ContainerName {
				return resourceFieldRef(&cs[i], ref, m.cfg.Allocatable)
			}
		}
	}
	return "", missingf("container %q not found", ref.ContainerName)
}

func (m *Manager) projectedFiles(ctx context.Context, out map[string]volumeFile, pod *corev1.Pod, volume string, p *corev1.ProjectedVolumeSource, objs *Objects) error {
	def := p.DefaultMode
	for i, src := range p.Sources {
		var err error
		switch {
		case src.ConfigMap != nil:
			c := src.ConfigMap
			err = m.configMapFiles(out, pod, c.Name, c.Items, c.Optional, def, objs)
		case src.Secret != nil:
			s := src.Secret
			err = m.secretFiles(out, pod, s.Name, s.Items, s.Optional, def, objs)
		case src.DownwardAPI != nil:
			err = m.downwardFiles(out, pod, src.DownwardAPI.Items, def)
		case src.ServiceAccountToken != nil:
			err = m.tokenFile(ctx, out, pod, src.ServiceAccountToken, def)
		case src.ClusterTrustBundle != nil:
			err = trustBundleFile(out, src.ClusterTrustBundle, def, objs)
		case src.PodCertificate != nil:
			err = m.certificateFiles(out, pod, volume, i, src.PodCertificate, def)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tokenFile adds the service account token of the projection p. A node
// without a TokenSource adds none.
func (m *Manager) tokenFile(ctx context.Context, out map[string]volumeFile, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection, def *int32) error {
	if m.tokens == nil {
		return nil
	}
	token, err := m.tokens.get(ctx, pod, p)
	if err != nil {
		return fmt.Errorf("failed to fetch token: %w", err)
	}
	out[p.Path] = volumeFile{data: []byte(token), mode: fileMode(nil, def)}
	return nil
}

// setUpVolume makes the API data volume v of pod hold its current
// payload, mounting its tmpfs first if it needs one, and gives it to the
// pod's fsGroup. It reports whether it wrote a new version.
func (m *Manager) setUpVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, objs *Objects) (bool, error) {
	payload, err := m.volumePayload(ctx, pod, v, objs)
	if err != nil {
		return false, err
	}
	dir := m.volumeDir(pod.UID, v.Name)
	if inMemory(v) {
		if err := mountTmpfs(dir, "mode=0755"); err != nil {
			return false, err
		}
	}
	gid := fsGroup(pod)
	if gid == nil {
		return writeAtomic(dir, payload, m.cfg.Now())
	}
	wrote, err := writeAtomic(dir, withFSGroupModes(payload), m.cfg.Now())
	if err == nil && wrote {
		// The kubelet too sets the ownership once the files are written.
		err = setOwnership(dir, *gid, false)
	}
	return wrote, err
}

// mountTmpfs mounts a tmpfs with options opts on dir unless one is there.
func mountTmpfs(dir, opts string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if mounted, err := mountinfo.Mounted(dir); err != nil || mounted {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// tmpfsSize is the tmpfs size option for an emptyDir's sizeLimit, "" for
// none (a tmpfs then holds up to half the node's memory).
func tmpfsSize(limit *resource.Quantity) string {
	if limit == nil || limit.Sign() <= 0 {
		return ""
	}
	return fmt.Sprintf(",size=%d", limit.Value())
}

// removeVolumes unmounts and deletes what the node keeps of pod uid's
// volumes. Removing nothing is not an error.
func (m *Manager) removeVolumes(uid types.UID) error {
	if m.tokens != nil {
		m.tokens.forget(uid)
	}
	if m.certs != nil {
		m.certs.forget(uid)
	}
	return removeVolumeDirs(filepath.Join(m.podVolumesDir(), string(uid)))
}

func removeVolumeDirs(podDir string) error {
	entries, err := os.ReadDir(podDir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(podDir, e.Name())
		if mounted, _ := mountinfo.Mounted(dir); mounted {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", dir, err)
			}
		}
	}
	return os.RemoveAll(podDir)
}

// collectVolumes removes the volumes of pods that are not desired.
func (m *Manager) collectVolumes(desired map[types.UID]*corev1.Pod) {
	entries, err := os.ReadDir(m.podVolumesDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if desired[types.UID(e.Name())] != nil {
			continue
		}
		if err := removeVolumeDirs(filepath.Join(m.podVolumesDir(), e.Name())); err != nil {
			m.lg.Warn("remove volumes of a pod not bound here", "uid", e.Name(), "err", err)
		}
	}
}
