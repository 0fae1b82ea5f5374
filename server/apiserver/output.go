package apiserver

import (
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/registry"
)

// outputKind is the representation a client asked for in Accept.
type outputKind int

const (
	outputObject outputKind = iota
	outputTable
	outputPartialMetadata
	outputProtobuf // the object in the Kubernetes protobuf encoding
)

// negotiate picks the representation from the Accept header. Clients such
// as kubectl list Table first and plain JSON as a fallback; client-go may
// list protobuf first. Tables and partial metadata are served as JSON only.
func negotiate(r *http.Request) (outputKind, string, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return outputObject, "", nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "*/*", "application/*":
		case protobufType:
			if params["as"] == "" {
				return outputProtobuf, "", nil
			}
			continue
		default:
			continue
		}
		switch params["as"] {
		case "":
			return outputObject, "", nil
		case "Table":
			if params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1") {
				return outputTable, params["v"], nil
			}
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			if params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1") {
				return outputPartialMetadata, params["v"], nil
			}
		}
	}
	return 0, "", apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "get", schema.GroupResource{}, "",
		"only the following media types are accepted: application/json, application/json;as=Table;g=meta.k8s.io;v=v1, application/vnd.kubernetes.protobuf", 0, false)
}

func includeObjectPolicy(r *http.Request) metav1.IncludeObjectPolicy {
	switch p := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); p {
	case metav1.IncludeNone, metav1.IncludeObject:
		return p
	}
	return metav1.IncludeMetadata
}

// writeWritten writes an object a request has just stored, as a read of
// it would give it back: where the stored form cannot tell an empty list
// or map from a missing one, a JSON client sees the same null or omission
// as it will on every later read and watch event, as from upstream, which
// answers writes with the object decoded from storage. stored is obj's
// stored form if the caller has it (nil for a dry run, or if not at hand):
// the response is then made from it.
func (s *Server) writeWritten(w http.ResponseWriter, r *http.Request, res *registry.Resource, code int, obj runtime.Object, stored []byte) error {
	if stored != nil && res.View == nil && writeRaw(w, r, code, stored, revisionOf(obj)) {
		return nil
	}
	// A custom object is as a read gives it already: unstructured keeps
	// empty lists and maps as they are.
	if out, _, err := negotiate(r); err == nil && out != outputProtobuf && res.Custom == nil {
		if read, err := asRead(res, obj, stored); err == nil {
			obj = read
		}
	}
	return s.writeObject(w, r, res, code, obj)
}

// asRead returns a copy of obj as decoding its stored form (stored, or
// else obj encoded) gives it, with its apiVersion, kind and
// resourceVersion.
func asRead(res *registry.Resource, obj runtime.Object, stored []byte) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	data := stored
	if data == nil {
		if data, err = registry.EncodeStored(res, obj); err != nil {
			return nil, err
		}
	}
	read, err := registry.DecodeStoredAs(res, data)
	if err != nil {
		return nil, err
	}
	setTypeMeta(read, res)
	rm, err := meta.Accessor(read)
	if err != nil {
		return nil, err
	}
	rm.SetResourceVersion(m.GetResourceVersion())
	return read, nil
}

// writeObject writes one object in the representation asked for.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, res *registry.Resource, code int, obj runtime.Object) error {
	out, version, err := negotiate(r)
	if err != nil {
		return err
	}
	switch out {
	case outputTable:
		t := s.table(r, res, []runtime.Object{obj}, version)
		if m, err := meta.Accessor(obj); err == nil {
			t.ResourceVersion = m.GetResourceVersion()
		}
		writeJSON(w, code, t)
	case outputPartialMetadata:
		writeJSON(w, code, partialMetadata(obj, version))
	case outputProtobuf:
		writeProtobuf(w, code, obj)
	default:
		writeJSON(w, code, obj)
	}
	return nil
}

// writeList writes a list; items are the list's objects.
func (s *Server) writeList(w http.ResponseWriter, r *http.Request, res *registry.Resource, list runtime.Object, items []runtime.Object) error {
	out, version, err := negotiate(r)
	if err != nil {
		return err
	}
	lm, _ := meta.ListAccessor(list)
	switch out {
	case outputTable:
		t := s.table(r, res, items, version)
		t.ResourceVersion = lm.GetResourceVersion()
		t.Continue = lm.GetContinue()
		t.RemainingItemCount = lm.GetRemainingItemCount()
		writeJSON(w, http.StatusOK, t)
	case outputPartialMetadata:
		pl := &metav1.PartialObjectMetadataList{
			TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadataList", APIVersion: "meta.k8s.io/" + version},
			ListMeta: metav1.ListMeta{ResourceVersion: lm.GetResourceVersion(), Continue: lm.GetContinue(), RemainingItemCount: lm.GetRemainingItemCount()},
		}
		for _, it := range items {
			pl.Items = append(pl.Items, *partialMetadata(it, version))
		}
		writeJSON(w, http.StatusOK, pl)
	case outputProtobuf:
		writeProtobuf(w, http.StatusOK, list)
	default:
		writeJSON(w, http.StatusOK, list)
	}
	return nil
}

// table builds the metav1.Table for objs.
func (s *Server) table(r *http.Request, res *registry.Resource, objs []runtime.Object, version string) *metav1.Table {
	t := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/" + version},
		ColumnDefinitions: res.Columns,
		Rows:              make([]metav1.TableRow, 0, len(objs)),
	}
	policy := includeObjectPolicy(r)
	for _, obj := range objs {
		row := metav1.TableRow{Cells: res.Row(obj)}
		switch policy {
		case metav1.IncludeObject:
			row.Object = runtime.RawExtension{Object: obj}
		case metav1.IncludeMetadata:
			row.Object = runtime.RawExtension{Object: partialMetadata(obj, "v1")}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func partialMetadata(obj runtime.Object, version string) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/" + version}}
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			p.ObjectMeta = *om
		}
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if m, ok := u.Object["metadata"].(map[string]interface{}); ok {
			// A custom object's metadata was checked on write.
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(m, &p.ObjectMeta)
		}
	}
	return p
}
