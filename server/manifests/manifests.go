package manifests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/record"
)

// DefaultInterval is how often the directory is read for changes.
const DefaultInterval = 5 * time.Second

// Component is the source of the events about manifest files.
const Component = "minik-manifests"

// Event reasons.
const (
	ReasonApplied     = "Applied"
	ReasonApplyFailed = "ApplyFailed"
	ReasonRemoved     = "Removed"
	ReasonPruneFailed = "DeleteFailed"
)

// Dir is the manifests directory of a server's data dir.
func Dir(dataDir string) string { return filepath.Join(dataDir, "server", "manifests") }

// Config configures a Manager.
type Config struct {
	// Dir is the directory of manifest files (created if missing).
	Dir string
	// Loopback reaches the API; its user must be allowed to write every
	// kind a manifest holds.
	Loopback *rest.Config
	// Interval is how often Dir is read (default DefaultInterval).
	Interval time.Duration
	Logger   *slog.Logger
}

// Manager keeps the cluster in step with the manifest files of a
// directory. Its goroutine (Run) owns every field but the recorder.
type Manager struct {
	dir      string
	interval time.Duration
	lg       *slog.Logger
	client   kubernetes.Interface
	objects  *objectClient
	events   *record.Recorder

	// records: file name → its record, read from the API at the first
	// sync; nil before.
	records map[string]*fileRecord
	// seen: file name → what was last done with its content.
	seen map[string]fileState
}

// fileState is the outcome of the last sync of a file's content.
type fileState struct {
	sha256 string
	// retry: the apply failed for a reason that may pass (the API was
	// unavailable, a kind not served yet), so the same content is
	// applied again at the next sync.
	retry bool
}

// New returns a Manager of cfg.Dir.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	client, err := kubernetes.NewForConfig(cfg.Loopback)
	if err != nil {
		return nil, err
	}
	objects, err := newObjectClient(cfg.Loopback)
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger.With("component", "manifests")
	return &Manager{
		dir: cfg.Dir, interval: cfg.Interval, lg: lg,
		client: client, objects: objects,
		events: record.New(client, Component, lg, record.Options{}),
		seen:   map[string]fileState{},
	}, nil
}

// Run syncs the directory at once and then every interval, until ctx
// ends. Failures are logged and reported as events; Run returns nil
// when ctx ends, after its goroutines have exited.
func (m *Manager) Run(ctx context.Context) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("manifests dir: %w", err)
	}
	done := make(chan struct{})
	go func() { m.events.Run(ctx); close(done) }()
	defer func() { <-done }()
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.lg.Warn("manifests not synced", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync applies every manifest file whose content changed since the last
// sync (all of them at the first) or whose last apply may succeed on a
// retry, and deletes what files that are gone had created. It returns an
// error only when the directory or the records cannot be read; a file's
// failure is reported about that file.
func (m *Manager) Sync(ctx context.Context) error {
	if m.records == nil {
		records, bad, err := loadRecords(ctx, m.client)
		if err != nil {
			return err
		}
		for _, err := range bad {
			m.lg.Warn("manifest record ignored", "err", err)
		}
		m.records = records
	}
	files, err := m.read()
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(files) {
		if ctx.Err() != nil {
			return ctx.Err() // stopped leading: the next leader syncs
		}
		f := files[name]
		h := f.sum()
		if st, ok := m.seen[name]; ok && st.sha256 == h && !st.retry {
			continue
		}
		if f.err != nil {
			// Kept: an unreadable file is not a removed one.
			m.fail(ctx, m.recordFor(name), fmt.Errorf("%s: %w", name, f.err))
			m.seen[name] = fileState{sha256: h}
			continue
		}
		m.seen[name] = fileState{sha256: h, retry: m.applyFile(ctx, name, f.data, h)}
	}
	for _, name := range sortedKeys(m.records) {
		if _, ok := files[name]; !ok && ctx.Err() == nil {
			m.removeFile(ctx, name)
		}
	}
	for name := range m.seen {
		if _, ok := files[name]; !ok {
			delete(m.seen, name)
		}
	}
	return ctx.Err()
}

// isManifest reports whether a file name is one of a manifest.
func isManifest(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false // editors' and tools' temporary files
	}
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// file is the content of a manifest file, or why it could not be read.
type file struct {
	data []byte
	err  error
}

// sum identifies the content (or the error) of f.
func (f file) sum() string {
	if f.err != nil {
		return "error: " + f.err.Error()
	}
	s := sha256.Sum256(f.data)
	return hex.EncodeToString(s[:])
}

// read returns every manifest file of the directory. A file that vanished
// since the directory was listed is left out; one that cannot be read is
// in with its error.
func (m *Manager) read() (map[string]file, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("reading the manifests dir: %w", err)
	}
	files := map[string]file{}
	for _, e := range entries {
		if !isManifest(e.Name()) {
			continue
		}
		p := filepath.Join(m.dir, e.Name())
		fi, err := os.Stat(p) // follows symbolic links
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			files[e.Name()] = file{err: err}
			continue
		case !fi.Mode().IsRegular():
			continue
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		files[e.Name()] = file{data: data, err: err}
	}
	return files, nil
}

// recordFor returns the record of file, a new one if it has none.
func (m *Manager) recordFor(file string) *fileRecord {
	rec := m.records[file]
	if rec == nil {
		rec = &fileRecord{file: file}
		m.records[file] = rec
	}
	return rec
}

// applyFile applies the objects of file and deletes those of its
// previous content it no longer declares. When the file does not parse,
// or the API refuses one of its objects, nothing of it is applied and
// what was applied before stays. It reports whether the failure, if any,
// may pass on a retry of the same content.
func (m *Manager) applyFile(ctx context.Context, file string, data []byte, sha string) (retry bool) {
	rec := m.recordFor(file)
	objs, err := parse(file, data)
	if err != nil {
		m.fail(ctx, rec, err)
		return false
	}
	applied, err := m.applyObjects(ctx, rec, objs)
	if err != nil {
		rec.objects = rec.merged(applied)
		m.fail(ctx, rec, fmt.Errorf("%s: %w", file, err))
		return isTransient(err)
	}
	left, pruneErr := m.prune(ctx, rec.objects, applied)
	rec.objects, rec.sha256 = append(applied, left...), sha
	if err := rec.save(ctx, m.client); err != nil {
		m.lg.Warn("manifest record not written", "file", file, "err", err)
		return true
	}
	if pruneErr != nil {
		m.lg.Warn("manifest objects not deleted", "file", file, "err", pruneErr)
		m.events.Eventf(rec.cm, corev1.EventTypeWarning, ReasonPruneFailed, "%s: %v", file, pruneErr)
		return true
	}
	m.lg.Info("manifest applied", "file", file, "objects", len(applied))
	m.events.Eventf(rec.cm, corev1.EventTypeNormal, ReasonApplied, "applied %d objects from %s", len(applied), file)
	return false
}

// applyObjects applies objs in order and returns what it applied. It first
// has the API check every object it can (a dry run) and applies none if
// one is refused; objects of a kind that a CustomResourceDefinition
// earlier in the file adds, or in a namespace that it creates, are only
// checked when applied.
func (m *Manager) applyObjects(ctx context.Context, rec *fileRecord, objs []object) ([]ref, error) {
	mappings := make([]*meta.RESTMapping, len(objs))
	for i, o := range objs {
		setManifest(o.u, rec.file)
		mp, err := m.objects.mapping(o.u, false)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.where(), err)
		}
		mappings[i] = mp
		if _, _, err := m.objects.apply(ctx, mp, o.u, true); isRefused(err) {
			return nil, fmt.Errorf("%s: %w", o.where(), err)
		}
	}
	var applied []ref
	for i, o := range objs {
		mp := mappings[i]
		if mp == nil {
			var err error
			if mp, err = m.awaitMapping(ctx, o.u, definedKinds(applied)); err != nil {
				return applied, fmt.Errorf("%s: %w", o.where(), err)
			}
		}
		out, created, err := m.objects.apply(ctx, mp, o.u, false)
		if err != nil {
			return applied, fmt.Errorf("%s: %w", o.where(), err)
		}
		r := ref{
			Group: mp.Resource.Group, Version: mp.Resource.Version, Resource: mp.Resource.Resource,
			Kind: mp.GroupVersionKind.Kind, Namespace: out.GetNamespace(), Name: out.GetName(), UID: out.GetUID(),
		}
		r.Created = created || rec.createdUID(r.key(), r.UID)
		applied = append(applied, r)
	}
	return applied, nil
}

// Once a CustomResourceDefinition is stored, the API takes a moment to
// serve its kind: a custom resource after it in the file waits for
// discovery to list the kind, up to definitionWait, before the apply is
// left to the next sync.
const (
	definitionWait = 5 * time.Second
	definitionPoll = 100 * time.Millisecond
)

// awaitMapping finds u's resource afresh; when the file just applied a
// CustomResourceDefinition (defined), it asks discovery again until the
// kind is served or definitionWait has passed.
func (m *Manager) awaitMapping(ctx context.Context, u *unstructured.Unstructured, defined bool) (*meta.RESTMapping, error) {
	deadline := time.Now().Add(definitionWait)
	for {
		mp, err := m.objects.mapping(u, true)
		if err == nil || !meta.IsNoMatchError(err) || !defined || time.Now().After(deadline) {
			return mp, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(definitionPoll):
		}
	}
}

// definedKinds reports whether refs hold a CustomResourceDefinition.
func definedKinds(refs []ref) bool {
	return slices.ContainsFunc(refs, func(r ref) bool {
		return r.Group == "apiextensions.k8s.io" && r.Kind == "CustomResourceDefinition"
	})
}

// prune deletes the objects of before that the file created and that are
// not in now, last first, and returns those it could not delete.
func (m *Manager) prune(ctx context.Context, before, now []ref) ([]ref, error) {
	keep := map[string]bool{}
	for _, r := range now {
		keep[r.key()] = true
	}
	var left []ref
	var errs []error
	for _, r := range slices.Backward(before) {
		if keep[r.key()] || !r.Created {
			continue
		}
		if err := m.objects.delete(ctx, r); err != nil {
			left = append(left, r)
			errs = append(errs, err)
			continue
		}
		m.lg.Info("manifest object deleted", "object", r.String())
	}
	return left, errors.Join(errs...)
}

// removeFile deletes what a file that is gone had created, then its
// record.
func (m *Manager) removeFile(ctx context.Context, file string) {
	rec := m.records[file]
	left, err := m.prune(ctx, rec.objects, nil)
	if err != nil {
		rec.objects = left
		m.lg.Warn("manifest objects not deleted", "file", file, "err", err)
		if rec.save(ctx, m.client) == nil {
			m.events.Eventf(rec.cm, corev1.EventTypeWarning, ReasonPruneFailed, "%s removed: %v", file, err)
		}
		return
	}
	if err := rec.remove(ctx, m.client); err != nil {
		m.lg.Warn("manifest record not deleted", "file", file, "err", err)
		return
	}
	delete(m.records, file)
	m.lg.Info("manifest removed", "file", file, "deleted", countCreated(rec.objects))
	if rec.cm != nil {
		m.events.Eventf(rec.cm, corev1.EventTypeNormal, ReasonRemoved, "%s removed: deleted %d objects", file, countCreated(rec.objects))
	}
}

// fail reports why file could not be applied: a log line and a Warning
// event about its record (written first, so the event has an object).
func (m *Manager) fail(ctx context.Context, rec *fileRecord, err error) {
	if ctx.Err() != nil {
		return // stopped, not failed
	}
	m.lg.Warn("manifest not applied", "file", rec.file, "err", err)
	if serr := rec.save(ctx, m.client); serr != nil {
		m.lg.Warn("manifest record not written", "file", rec.file, "err", serr)
		return
	}
	m.events.Eventf(rec.cm, corev1.EventTypeWarning, ReasonApplyFailed, "%v", err)
}

// setManifest marks u as coming from file.
func setManifest(u interface {
	GetAnnotations() map[string]string
	SetAnnotations(map[string]string)
}, file string) {
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationManifest] = file
	u.SetAnnotations(a)
}

// isRefused reports whether the API refused an object for what it is
// (invalid, malformed, denied by admission): applying it again cannot
// succeed.
func isRefused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsMethodNotSupported(err) || apierrors.IsRequestEntityTooLargeError(err)
}

// isTransient reports whether an apply that failed with err may succeed
// with the same content later.
func isTransient(err error) bool { return !isRefused(err) && !errors.Is(err, ErrParse) }

func countCreated(refs []ref) int {
	n := 0
	for _, r := range refs {
		if r.Created {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
