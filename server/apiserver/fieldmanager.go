package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/minik-dev/minik/server/registry"
)

// Field management (server-side apply): every create, update and patch
// of a client records in metadata.managedFields which manager set which
// fields (an Update operation); an apply patch merges the applied
// configuration into the object and records it as an Apply operation,
// refusing with 409 to take a field another manager set unless forced.
// The merge and the bookkeeping are apimachinery's managedfields; the
// schemas of the built-in kinds are the structured-merge-diff types
// client-go carries for its apply configurations. Custom resources and
// kinds client-go does not know are merged without a schema (every list
// atomic), as upstream treats a schemaless custom resource.

// fieldManagerKey names a field manager: one per kind and subresource.
type fieldManagerKey struct {
	gvk         schema.GroupVersionKind
	subresource string
}

// fieldManagers builds and keeps the field managers of the kinds written.
type fieldManagers struct {
	mu    sync.Mutex
	byKey map[fieldManagerKey]*managedfields.FieldManager // guarded by mu
}

// get returns the field manager of res for writes of kind (updateStatus:
// the status subresource), building it on first use.
func (f *fieldManagers) get(res *registry.Resource, kind updateKind) (*managedfields.FieldManager, error) {
	key := fieldManagerKey{gvk: res.GroupVersion().WithKind(res.Kind)}
	switch kind {
	case updateStatus:
		key.subresource = "status"
	case updateEphemeral:
		key.subresource = "ephemeralcontainers"
	case updateApproval:
		key.subresource = "approval"
	case updateResize:
		key.subresource = "resize"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fm, ok := f.byKey[key]; ok {
		return fm, nil
	}
	fm, err := newFieldManager(res, key)
	if err != nil {
		return nil, err
	}
	if f.byKey == nil {
		f.byKey = map[fieldManagerKey]*managedfields.FieldManager{}
	}
	f.byKey[key] = fm
	return fm, nil
}

func newFieldManager(res *registry.Resource, key fieldManagerKey) (*managedfields.FieldManager, error) {
	gv := key.gvk.GroupVersion()
	var filters map[fieldpath.APIVersion]fieldpath.Filter
	if res.HasStatus {
		// What a write of one part of the object may not set, as
		// upstream strategies declare: an apply to the object does not
		// own its status, an apply to status does not own its spec.
		set := fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
		switch key.subresource {
		case "status":
			set = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"))
		case "approval":
			set = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"), fieldpath.MakePathOrDie("status", "certificate"))
		}
		filters = map[fieldpath.APIVersion]fieldpath.Filter{
			fieldpath.APIVersion(gv.String()): fieldpath.NewExcludeSetFilter(set),
		}
	}
	if res.Custom != nil {
		return managedfields.NewDefaultCRDFieldManager(managedfields.NewDeducedTypeConverter(),
			sameVersion{}, sameVersion{}, customCreater{}, key.gvk, gv, key.subresource, filters)
	}
	return managedfields.NewDefaultFieldManager(builtinTypeConverter(res), protobufScheme, protobufScheme, protobufScheme, key.gvk, gv, key.subresource, filters)
}

// builtinTypeConverter returns the converter of a built-in kind: client-go's
// schemas (see kindTypeConverter), or none (every list atomic) for a kind
// client-go has no schema of (CustomResourceDefinition).
func builtinTypeConverter(res *registry.Resource) managedfields.TypeConverter {
	tc, err := kindTypeConverter(res.GroupVersion().WithKind(res.Kind))
	if err != nil {
		return managedfields.NewDeducedTypeConverter()
	}
	probe := res.New()
	setTypeMeta(probe, res)
	if _, err := tc.ObjectToTyped(probe); err != nil {
		return managedfields.NewDeducedTypeConverter()
	}
	return tc
}

// admissionSchemas gives the admission chain the schemas that apply
// configurations of mutating policies are merged by: those of field
// management.
type admissionSchemas struct {
	byKind sync.Map // schema.GroupVersionKind → managedfields.TypeConverter
}

func (a *admissionSchemas) TypeConverter(gvk schema.GroupVersionKind) managedfields.TypeConverter {
	if tc, ok := a.byKind.Load(gvk); ok {
		return tc.(managedfields.TypeConverter)
	}
	var tc managedfields.TypeConverter = managedfields.NewDeducedTypeConverter() // a custom resource
	for _, res := range registry.All() {
		if res.View == nil && res.GroupVersion().WithKind(res.Kind) == gvk {
			tc = builtinTypeConverter(res)
			break
		}
	}
	a.byKind.Store(gvk, tc)
	return tc
}

// managerName is the field manager a request names, else, as upstream,
// the first part of its User-Agent ("kubectl" of "kubectl/v1.37.2 ...").
func managerName(r *http.Request) string {
	if m := r.URL.Query().Get("fieldManager"); m != "" {
		return m
	}
	ua := r.UserAgent()
	if i := strings.IndexByte(ua, '/'); i >= 0 {
		ua = ua[:i]
	}
	if len(ua) > 128 {
		ua = ua[:128]
	}
	return ua
}

// trackUpdate wraps mutate to record the fields it sets as an Update by
// manager in the managedFields of the object it returns.
func trackUpdate(fm *managedfields.FieldManager, manager string, mutate mutateFunc) mutateFunc {
	return func(cur runtime.Object) (runtime.Object, error) {
		live := cur.DeepCopyObject()
		obj, err := mutate(cur)
		if err != nil {
			return nil, err
		}
		return storedTimes(fm.UpdateNoErrors(live, obj, manager)), nil
	}
}

// storedTimes rounds the times of obj's managedFields down to the second,
// as they are stored, so that the object returned by a write is the one
// a read returns.
func storedTimes(obj runtime.Object) runtime.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj
	}
	entries := m.GetManagedFields()
	for i := range entries {
		if t := entries[i].Time; t != nil {
			entries[i].Time = ptr.To(t.Rfc3339Copy())
		}
	}
	m.SetManagedFields(entries)
	return obj
}

// sameVersion converts the objects of a custom resource, served in one
// version, to that version only; it is also their (absent) defaulting.
type sameVersion struct{}

func (sameVersion) Convert(in, out, context any) error {
	u, ok := in.(*unstructured.Unstructured)
	o, ok2 := out.(*unstructured.Unstructured)
	if !ok || !ok2 {
		return fmt.Errorf("converting %T to %T: only unstructured objects convert", in, out)
	}
	o.Object = runtime.DeepCopyJSON(u.Object)
	return nil
}

func (sameVersion) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	kind := in.GetObjectKind().GroupVersionKind()
	if target, ok := gv.KindForGroupVersionKinds([]schema.GroupVersionKind{kind}); !ok || target != kind {
		return nil, fmt.Errorf("converting %v: only version %s is served", kind, kind.GroupVersion())
	}
	return in, nil
}

func (sameVersion) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

func (sameVersion) Default(runtime.Object) {}

// customCreater makes the empty objects of custom resources.
type customCreater struct{}

func (customCreater) New(kind schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kind)
	return u, nil
}

// trackCreate records the fields of a new object as set by the request's
// manager, in an Update operation.
func (s *Server) trackCreate(r *http.Request, res *registry.Resource, obj runtime.Object) (runtime.Object, error) {
	fm, err := s.fields.get(res, updateMain)
	if err != nil {
		return nil, err
	}
	return storedTimes(fm.UpdateNoErrors(newLive(res), obj, managerName(r))), nil
}

// newLive is the empty object a new object's fields are compared with.
func newLive(res *registry.Resource) runtime.Object {
	obj := res.New()
	setTypeMeta(obj, res)
	return obj
}
