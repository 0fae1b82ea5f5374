package apiserver

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// generateNameTries bounds the retries when a generated name is taken.
const generateNameTries = 8

func (s *Server) serveCreate(w *statusRecorder, r *http.Request, info requestInfo) error {
	data, err := readObjectBody(w, r)
	if err != nil {
		return err
	}
	obj, err := decodeObject(w, r, info.Resource, data)
	if err != nil {
		return err
	}
	m, _ := meta.Accessor(obj)
	if info.Resource.Namespaced {
		if ns := m.GetNamespace(); ns != "" && ns != info.Namespace {
			return badRequest("the namespace of the provided object (%q) does not match the namespace sent on the request (%q)", ns, info.Namespace)
		}
		m.SetNamespace(info.Namespace)
	}
	if obj, err = s.trackCreate(r, info.Resource, obj); err != nil {
		return err
	}
	out, raw, err := s.createObject(r.Context(), info.Resource, obj, isDryRun(r))
	if errors.Is(err, store.ErrExists) {
		// The URL of a create names no object: the body does.
		return statusFor(err, schema.GroupResource{Resource: info.Resource.Name}, m.GetName())
	}
	if err != nil {
		return err
	}
	return s.writeWritten(w, r, info.Resource, http.StatusCreated, out, raw)
}

// createObject defaults, validates and stores a new object; obj's
// namespace must already be set for namespaced kinds. It returns the
// object and its stored bytes (nil for a dry run).
func (s *Server) createObject(ctx context.Context, res *registry.Resource, obj runtime.Object, dryRun bool) (runtime.Object, []byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	if err := s.admit(ctx, res, obj, nil); err != nil {
		return nil, nil, err
	}
	gk := schema.GroupKind{Kind: res.Kind}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		return nil, nil, apierrors.NewInvalid(gk, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	s.prepareMetaForCreate(m)
	prepareForCreate(ctx, res, obj)
	var lrs []*corev1.LimitRange
	if res.Namespaced {
		if err := s.checkNamespaceOpen(ctx, res, obj); err != nil {
			return nil, nil, err
		}
		if lrs, err = s.defaultLimits(ctx, obj); err != nil {
			return nil, nil, err
		}
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		if err := s.admitPodServiceAccount(ctx, pod); err != nil {
			return nil, nil, err
		}
		if err := s.admitPodRuntimeClass(ctx, pod); err != nil {
			return nil, nil, err
		}
		if err := s.admitPodPriority(ctx, pod); err != nil {
			return nil, nil, err
		}
	}
	mutated, err := s.mutateWrite(ctx, res, obj, nil, dryRun)
	if err != nil {
		return nil, nil, err
	}
	if mutated != obj {
		// What a webhook or policy added is defaulted as the client's
		// own fields were, as upstream decodes a mutated object with
		// defaults (a container a policy adds gets its pull policy).
		prepareForCreate(ctx, res, mutated)
		obj = mutated
	}
	if m, err = meta.Accessor(obj); err != nil {
		return nil, nil, err
	}
	generated := m.GetName() == ""
	for try := 0; ; try++ {
		if generated {
			m.SetName(m.GetGenerateName() + randomSuffix())
		}
		if errs := res.ValidateCreate(obj); len(errs) > 0 {
			return nil, nil, apierrors.NewInvalid(gk, m.GetName(), errs)
		}
		out, raw, err := s.admitAndStore(ctx, res, obj, lrs, dryRun)
		if generated && errors.Is(err, store.ErrExists) && try < generateNameTries {
			continue
		}
		return out, raw, err
	}
}

// defaultLimits gives a new pod the defaults of its namespace's
// LimitRanges, and returns them for checkPodLimits.
func (s *Server) defaultLimits(ctx context.Context, obj runtime.Object) ([]*corev1.LimitRange, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	lrs, err := s.limitRanges(ctx, pod.Namespace)
	if err != nil {
		return nil, err
	}
	defaultPodLimits(pod, lrs)
	return lrs, nil
}

// admitAndStore runs the admission that follows validation (LimitRange
// limits, then quota) and stores a valid new object unless dryRun.
func (s *Server) admitAndStore(ctx context.Context, res *registry.Resource, obj runtime.Object, lrs []*corev1.LimitRange, dryRun bool) (runtime.Object, []byte, error) {
	if err := s.validateWrite(ctx, res, obj, nil, dryRun); err != nil {
		return nil, nil, err
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		if err := checkPodLimits(pod, lrs); err != nil {
			return nil, nil, admissionForbidden(res, obj, err.Error())
		}
	}
	if !res.Namespaced {
		if dryRun {
			return obj, nil, nil
		}
		return s.storeNew(ctx, res, obj)
	}
	done, err := s.chargeQuota(ctx, res, obj, dryRun)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	if dryRun {
		return obj, nil, nil
	}
	return s.storeNew(ctx, res, obj)
}

// storeNew writes a validated object, allocating what its kind needs
// first and releasing it again if the write fails. It returns the object
// and its stored bytes.
func (s *Server) storeNew(ctx context.Context, res *registry.Resource, obj runtime.Object) (runtime.Object, []byte, error) {
	m, _ := meta.Accessor(obj)
	key := storageKey(res, m.GetNamespace(), m.GetName())
	if slices.Contains(policyResources, res.Name) {
		// Before the write: a create that reads the index after it
		// must find this policy.
		s.policies.stored(res.Name, m.GetNamespace(), m.GetName())
	}
	release, err := s.allocate(ctx, res, obj)
	if err != nil {
		return nil, nil, err
	}
	data, err := registry.EncodeStored(res, obj)
	if err != nil {
		release()
		return nil, nil, err
	}
	rev, err := s.storeAnnounced(res, key, obj, data, func() (int64, error) { return s.store.Create(ctx, key, data) })
	if err != nil {
		release()
		return nil, nil, err
	}
	m.SetResourceVersion(formatRV(rev))
	return obj, data, nil
}

// prepareMetaForCreate sets the server-owned metadata of a new object.
func (s *Server) prepareMetaForCreate(m metav1.Object) {
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.NewTime(s.cfg.Now().Truncate(1e9)))
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	if m.GetGeneration() == 0 {
		m.SetGeneration(1)
	}
}

// checkNamespaceOpen refuses content in a namespace that does not exist
// (404 NotFound on the namespace) or is being deleted (403 Forbidden on
// the object, with a NamespaceTerminating cause, as Kubernetes' namespace
// lifecycle admission answers).
func (s *Server) checkNamespaceOpen(ctx context.Context, res *registry.Resource, obj runtime.Object) error {
	m, _ := meta.Accessor(obj)
	nsRes, _ := registry.Lookup("namespaces")
	ns := m.GetNamespace()
	kv, err := s.store.Get(ctx, storageKey(nsRes, "", ns))
	if errors.Is(err, store.ErrNotFound) {
		return apierrors.NewNotFound(schemaGR("namespaces"), ns)
	}
	if err != nil {
		return err
	}
	terminating, err := s.nsTerminating(nsRes, kv)
	if err != nil || !terminating {
		return err
	}
	st := apierrors.NewForbidden(schema.GroupResource{Group: res.Group, Resource: res.Name}, admissionName(obj),
		errString("unable to create new content in namespace "+ns+" because it is being terminated"))
	st.ErrStatus.Details.Causes = append(st.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    corev1.NamespaceTerminatingCause,
		Message: "namespace " + ns + " is being terminated",
		Field:   "metadata.namespace",
	})
	return st
}

// nsTerminating reports whether a stored namespace is being deleted,
// decoding each revision of it only once.
func (s *Server) nsTerminating(nsRes *registry.Resource, kv store.KV) (bool, error) {
	s.nsMu.Lock()
	c, ok := s.nsCache[kv.Key]
	s.nsMu.Unlock()
	if ok && c.rev == kv.ModRevision {
		return c.terminating, nil
	}
	obj, err := decodeStored(nsRes, kv.Value, kv.ModRevision)
	if err != nil {
		return false, err
	}
	m, _ := meta.Accessor(obj)
	terminating := m.GetDeletionTimestamp() != nil
	s.nsMu.Lock()
	s.nsCache[kv.Key] = nsState{rev: kv.ModRevision, terminating: terminating}
	s.nsMu.Unlock()
	return terminating, nil
}

func isDryRun(r *http.Request) bool {
	for _, v := range r.URL.Query()["dryRun"] {
		if v == "All" {
			return true
		}
	}
	return false
}

// randomSuffix is the random part of a generated name, from the same
// alphabet Kubernetes uses (no vowels, no confusable digits).
func randomSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

// revisionOf is the resourceVersion of obj as a number (0 if unset).
func revisionOf(obj runtime.Object) int64 {
	m, err := meta.Accessor(obj)
	if err != nil {
		return 0
	}
	rev, _ := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
	return rev
}
