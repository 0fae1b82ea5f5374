package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// The CRD loop does, for the definitions in the store, what upstream's
// naming, establishing and finalizer controllers do: it accepts a
// definition's names unless another definition of the group holds them
// (NamesAccepted), starts serving its versions and marks it Established;
// and once a definition is being deleted (Terminating) it stops serving
// it, deletes every object of its kind and removes the
// customresourcecleanup finalizer. Every server runs it, so each serves
// what the store defines; their status writes agree.

// crdLoopRetry is the wait before a definition whose sync failed, or
// whose objects are not all gone yet, is looked at again.
const crdLoopRetry = time.Second

// crdLoop is the CRD loop's state, owned by Run's goroutine.
type crdLoop struct {
	s        *Server
	dirty    map[string]bool         // definitions to sync, by name
	compiled map[string]*compiledCRD // definitions served, by name
	retry    <-chan time.Time
}

func newCRDLoop(s *Server) *crdLoop {
	return &crdLoop{s: s, dirty: map[string]bool{}, compiled: map[string]*compiledCRD{}}
}

func crdResource() *registry.Resource {
	res, _ := registry.LookupIn(registry.GroupAPIExtensions, "customresourcedefinitions")
	return res
}

// scan marks every stored definition, and every one served, to be synced.
func (l *crdLoop) scan(ctx context.Context) {
	kvs, _, err := l.s.store.List(ctx, storagePrefix(crdResource(), ""), 0)
	if err != nil {
		l.s.log.Warn("listing customresourcedefinitions", "err", err)
		l.retryLater()
		return
	}
	prefix := storagePrefix(crdResource(), "")
	for _, kv := range kvs {
		l.dirty[strings.TrimPrefix(kv.Key, prefix)] = true
	}
	for name := range l.compiled {
		l.dirty[name] = true
	}
}

// observe marks a changed definition.
func (l *crdLoop) observe(ev store.Event) {
	if name, ok := strings.CutPrefix(ev.Key, storagePrefix(crdResource(), "")); ok {
		l.dirty[name] = true
	}
}

func (l *crdLoop) retryLater() {
	if l.retry == nil {
		l.retry = time.After(crdLoopRetry)
	}
}

// redo is called when the retry timer fires: the definitions still marked
// are synced again by the next work.
func (l *crdLoop) redo() { l.retry = nil }

// work syncs the marked definitions; those that fail stay marked and are
// tried again after crdLoopRetry.
func (l *crdLoop) work(ctx context.Context) {
	if len(l.dirty) == 0 || l.retry != nil {
		return
	}
	for name := range l.dirty {
		if err := l.sync(ctx, name); err != nil {
			if !errors.Is(err, errCRDContentRemains) && ctx.Err() == nil {
				l.s.log.Warn("syncing customresourcedefinition", "name", name, "err", err)
			}
			l.retryLater()
			continue
		}
		delete(l.dirty, name)
	}
}

// errCRDContentRemains marks a definition being deleted whose objects
// are not all gone yet.
var errCRDContentRemains = errors.New("objects of the definition remain")

func (l *crdLoop) sync(ctx context.Context, name string) error {
	obj, _, err := l.s.getObject(ctx, crdResource(), "", name)
	if errors.Is(err, store.ErrNotFound) {
		l.unserve(name)
		return nil
	}
	if err != nil {
		return err
	}
	crd := obj.(*apiextensionsv1.CustomResourceDefinition)
	if crd.DeletionTimestamp != nil {
		l.unserve(name)
		return l.cleanup(ctx, crd)
	}
	others, err := l.otherCRDs(ctx, crd)
	if err != nil {
		return err
	}
	now := metav1.NewTime(l.s.cfg.Now().Truncate(time.Second))
	want := crd.DeepCopy()
	acceptNames(want, others, now)
	if isCRDConditionTrue(want, apiextensionsv1.Established) {
		// Serve before saying so: a client that sees Established may
		// use the kind at once.
		if err := l.serve(want); err != nil {
			return err
		}
	}
	if equalCRDStatus(&crd.Status, &want.Status) {
		return nil
	}
	_, err = l.s.updateObject(ctx, crdResource(), "", name, updateRaw, false, func(cur runtime.Object) (runtime.Object, error) {
		c := cur.(*apiextensionsv1.CustomResourceDefinition)
		if c.UID != crd.UID || c.DeletionTimestamp != nil {
			return c, nil // replaced or being deleted meanwhile: the next sync sees it
		}
		acceptNames(c, others, now)
		return c, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// serve compiles crd (unless compiled at this generation and with these
// names already) and serves the new set.
func (l *crdLoop) serve(crd *apiextensionsv1.CustomResourceDefinition) error {
	n := crd.Status.AcceptedNames
	key := fmt.Sprintf("%s/%d/%s/%s/%s/%s/%s", crd.UID, crd.Generation, n.Plural, n.Singular, n.Kind, n.ListKind,
		strings.Join(n.ShortNames, ",")+";"+strings.Join(n.Categories, ","))
	if c, ok := l.compiled[crd.Name]; ok && c.key == key {
		return nil
	}
	c, err := compileCRD(crd, key, l.s.newConverter(crd))
	if err != nil {
		return err
	}
	l.compiled[crd.Name] = c
	l.install()
	return nil
}

func (l *crdLoop) unserve(name string) {
	if _, ok := l.compiled[name]; ok {
		delete(l.compiled, name)
		l.install()
	}
}

func (l *crdLoop) install() {
	crds := make([]*compiledCRD, 0, len(l.compiled))
	for _, c := range l.compiled {
		crds = append(crds, c)
	}
	l.s.custom.Store(newCustomSet(crds))
	l.s.kickAPIServices() // the local APIServices follow the custom groups
}

// otherCRDs are the definitions of crd's group but crd.
func (l *crdLoop) otherCRDs(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	res := crdResource()
	kvs, _, err := l.s.store.List(ctx, storagePrefix(res, ""), 0)
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, kv := range kvs {
		obj, err := l.s.decodeShared(res, kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		o := obj.(*apiextensionsv1.CustomResourceDefinition)
		if o.Name != crd.Name && o.Spec.Group == crd.Spec.Group {
			out = append(out, o)
		}
	}
	return out, nil
}

// acceptNames sets crd's accepted names and its NamesAccepted and
// Established conditions: the names of its spec are accepted unless
// another definition of the group has accepted one of them.
func acceptNames(crd *apiextensionsv1.CustomResourceDefinition, others []*apiextensionsv1.CustomResourceDefinition, now metav1.Time) {
	if msg := namesConflict(crd.Spec.Names, others); msg != "" {
		setCRDCondition(crd, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionFalse, "NameConflict", msg, now)
		if !isCRDConditionTrue(crd, apiextensionsv1.Established) {
			setCRDCondition(crd, apiextensionsv1.Established, apiextensionsv1.ConditionFalse, "NotAccepted", "not all names are accepted", now)
		}
		return
	}
	crd.Status.AcceptedNames = crd.Spec.Names
	setCRDCondition(crd, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionTrue, "NoConflicts", "no conflicts found", now)
	setCRDCondition(crd, apiextensionsv1.Established, apiextensionsv1.ConditionTrue, "InitialNamesAccepted", "the initial names have been accepted", now)
}

// namesConflict says which of names another definition holds, "" if none.
func namesConflict(names apiextensionsv1.CustomResourceDefinitionNames, others []*apiextensionsv1.CustomResourceDefinition) string {
	for _, o := range others {
		taken := o.Status.AcceptedNames
		resources := append([]string{taken.Plural, taken.Singular}, taken.ShortNames...)
		switch {
		case slices.Contains(resources, names.Plural):
			return fmt.Sprintf("%q is already in use", names.Plural)
		case names.Singular != "" && slices.Contains(resources, names.Singular):
			return fmt.Sprintf("%q is already in use", names.Singular)
		case names.Kind == taken.Kind || names.Kind == taken.ListKind:
			return fmt.Sprintf("%q is already in use", names.Kind)
		case names.ListKind != "" && (names.ListKind == taken.Kind || names.ListKind == taken.ListKind):
			return fmt.Sprintf("%q is already in use", names.ListKind)
		}
		for _, sn := range names.ShortNames {
			if slices.Contains(resources, sn) {
				return fmt.Sprintf("%q is already in use", sn)
			}
		}
	}
	return ""
}

func setCRDCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType, st apiextensionsv1.ConditionStatus, reason, msg string, now metav1.Time) {
	for i := range crd.Status.Conditions {
		c := &crd.Status.Conditions[i]
		if c.Type == t {
			if c.Status != st {
				c.LastTransitionTime = now
			}
			c.Status, c.Reason, c.Message = st, reason, msg
			return
		}
	}
	crd.Status.Conditions = append(crd.Status.Conditions, apiextensionsv1.CustomResourceDefinitionCondition{
		Type: t, Status: st, Reason: reason, Message: msg, LastTransitionTime: now,
	})
}

func isCRDConditionTrue(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// equalCRDStatus compares statuses but for transition times.
func equalCRDStatus(a, b *apiextensionsv1.CustomResourceDefinitionStatus) bool {
	strip := func(s *apiextensionsv1.CustomResourceDefinitionStatus) *apiextensionsv1.CustomResourceDefinitionStatus {
		c := s.DeepCopy()
		for i := range c.Conditions {
			c.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		return c
	}
	return strip(a).String() == strip(b).String()
}

// markCRDTerminating prepares a definition for deletion, as upstream's
// delete does: it gets the cleanup finalizer, which holds it until its
// objects are gone, and the Terminating condition.
func markCRDTerminating(crd *apiextensionsv1.CustomResourceDefinition, now time.Time) {
	if !slices.Contains(crd.Finalizers, registry.CRDCleanupFinalizer) {
		crd.Finalizers = append(crd.Finalizers, registry.CRDCleanupFinalizer)
	}
	setCRDCondition(crd, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue, "InstanceDeletionInProgress",
		"CustomResource deletion is in progress", metav1.NewTime(now.Truncate(time.Second)))
}

// cleanup deletes every object of a definition being deleted and then
// removes its cleanup finalizer. errCRDContentRemains means objects
// (held by their own finalizers) are still there.
func (l *crdLoop) cleanup(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) error {
	if !slices.Contains(crd.Finalizers, registry.CRDCleanupFinalizer) {
		return nil
	}
	storage := ""
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			storage = v.Name
		}
	}
	res, err := registry.NewCustom(crd, storage)
	if err != nil {
		return err
	}
	left, err := l.deleteAll(ctx, res)
	if err != nil {
		return err
	}
	if left > 0 {
		return errCRDContentRemains
	}
	_, err = l.s.updateObject(ctx, crdResource(), "", crd.Name, updateRaw, false, func(cur runtime.Object) (runtime.Object, error) {
		c := cur.(*apiextensionsv1.CustomResourceDefinition)
		if c.UID == crd.UID {
			setCRDCondition(c, apiextensionsv1.Terminating, apiextensionsv1.ConditionFalse, "InstanceDeletionCompleted",
				"removed all instances", metav1.NewTime(l.s.cfg.Now().Truncate(time.Second)))
			c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == registry.CRDCleanupFinalizer })
		}
		return c, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// deleteAll deletes every object of res, in every namespace, and returns
// how many are left (waiting for their finalizers).
func (l *crdLoop) deleteAll(ctx context.Context, res *registry.Resource) (int, error) {
	kvs, _, err := l.s.store.List(ctx, storagePrefix(res, ""), 0)
	if err != nil {
		return 0, err
	}
	bg := metav1.DeletePropagationBackground
	left := 0
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return 0, err
		}
		m, _ := meta.Accessor(obj)
		out, err := l.s.deleteObject(ctx, res, m.GetNamespace(), m.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("deleting %s %q: %w", res.Kind, m.GetName(), err)
		}
		if om, _ := meta.Accessor(out); om.GetDeletionTimestamp() != nil {
			left++
		}
	}
	return left, nil
}
