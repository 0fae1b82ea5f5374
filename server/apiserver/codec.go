package apiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/minik-dev/minik/server/registry"
)

// maxBodyBytes is the largest request body accepted, as in Kubernetes.
const maxBodyBytes = 3 << 20

// readBody reads a request body, refusing one over maxBodyBytes with 413,
// and converts YAML to JSON.
// A body of a type the server does not decode is refused with 415 before
// it is read; a DELETE's only if it has one (its body is optional).
func readBody(r *http.Request) ([]byte, error) {
	data, err := readRawBody(r)
	if err != nil || !isYAMLBody(r) {
		return data, err
	}
	return yamlToJSON(data)
}

// readObjectBody is readBody for the object or patch of a create, update
// or patch: keys repeated in a YAML body, which the conversion to JSON
// drops, are reported as fieldValidation asks, as strictDecode reports
// them in JSON.
func readObjectBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := readRawBody(r)
	if err != nil || !isYAMLBody(r) {
		return data, err
	}
	if r.URL.Query().Get("fieldValidation") != "Ignore" {
		if strictErr := yaml.UnmarshalStrict(data, &map[string]any{}); strictErr != nil && yaml.Unmarshal(data, &map[string]any{}) == nil {
			if err := reportStrict(w, r, []error{strictErr}); err != nil {
				return nil, err
			}
		}
	}
	return yamlToJSON(data)
}

func isYAMLBody(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/yaml" || ct == "application/apply-patch+yaml"
}

func yamlToJSON(data []byte) ([]byte, error) {
	out, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, badRequest("invalid YAML: %v", err)
	}
	return out, nil
}

// readRawBody reads a request body as sent; see readBody.
func readRawBody(r *http.Request) ([]byte, error) {
	typeErr := checkBodyType(r)
	if typeErr != nil && r.Method != http.MethodDelete {
		return nil, typeErr
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, bodyReadError(err)
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(
			fmt.Sprintf("request body of more than %d bytes", maxBodyBytes))
	}
	if typeErr != nil && len(data) > 0 {
		return nil, typeErr
	}
	return data, nil
}

// bodyTypes are the media types of the request bodies decoded, besides
// the patch types of a PATCH; no Content-Type means JSON, as in Kubernetes.
var bodyTypes = []string{"application/json", "application/yaml", protobufType}

// checkBodyType refuses a Content-Type outside bodyTypes with 415
// UnsupportedMediaType, as Kubernetes does, rather than reading the body
// as JSON. A PATCH's type is checked by patchType.
func checkBodyType(r *http.Request) error {
	h := r.Header.Get("Content-Type")
	if h == "" || r.Method == http.MethodPatch {
		return nil
	}
	if ct, _, err := mime.ParseMediaType(h); err == nil && slices.Contains(bodyTypes, ct) {
		return nil
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: "the body of the request was in an unknown format - accepted media types include: " + strings.Join(bodyTypes, ", "),
	}}
}

// decodeObject decodes a request body into a new object of res, checking
// apiVersion and kind. Unknown fields are refused, reported as a warning or
// ignored according to the fieldValidation parameter.
func decodeObject(w http.ResponseWriter, r *http.Request, res *registry.Resource, data []byte) (runtime.Object, error) {
	if res.Custom != nil {
		return decodeCustom(w, r, res, data)
	}
	if isProtobuf(r) {
		obj := res.New()
		if err := decodeProtobuf(data, obj); err != nil {
			return nil, err
		}
		if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != res.Kind || gvk.GroupVersion() != res.GroupVersion() {
			return nil, badRequest("the body of the request has kind %q in %q, want %q in %q for resource %q", gvk.Kind, gvk.GroupVersion(), res.Kind, res.GroupVersion(), res.Name)
		}
		return obj, nil
	}
	obj := res.New()
	decodeErr := strictDecode(w, r, data, obj)
	// The typed struct has decoded apiVersion and kind, if the body set
	// them; a wrong kind explains unknown fields better than they do.
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind != "" && gvk.Kind != res.Kind {
		return nil, badRequest("the body of the request has kind %q, want %q for resource %q", gvk.Kind, res.Kind, res.Name)
	}
	if gv := gvk.GroupVersion().String(); gv != "" && gv != res.GroupVersion().String() {
		return nil, badRequest("the body of the request has apiVersion %q, want %q for %s", gv, res.GroupVersion(), res.Kind)
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	setTypeMeta(obj, res)
	return obj, nil
}

// decodeCustom decodes a JSON body into an object of the custom resource
// res. As upstream, apiVersion and kind must be those of res; fields the
// schema does not know are pruned later (PrepareForCreate/Update).
func decodeCustom(w http.ResponseWriter, r *http.Request, res *registry.Resource, data []byte) (*unstructured.Unstructured, error) {
	if isProtobuf(r) {
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
			Message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
		}}
	}
	u := &unstructured.Unstructured{}
	if err := registry.UnmarshalCustom(data, u); err != nil {
		return nil, badRequest("the body of the request could not be decoded: %v", err)
	}
	if u.GetKind() == "" {
		return nil, badRequest("Object 'Kind' is missing in '%s'", truncate(data, 256))
	}
	if u.GetKind() != res.Kind {
		return nil, badRequest("the body of the request has kind %q, want %q for resource %q", u.GetKind(), res.Kind, res.Name)
	}
	if gv := u.GetAPIVersion(); gv != res.GroupVersion().String() {
		return nil, badRequest("the API version in the data (%s) does not match the expected API version (%s)", gv, res.GroupVersion())
	}
	return u, checkUnknownFields(w, r, registry.UnknownFields(res, u))
}

// checkUnknownFields reports the fields of a custom object its schema
// prunes as fieldValidation asks: a 400 (Strict), warnings (Warn, the
// default) or nothing (Ignore).
func checkUnknownFields(w http.ResponseWriter, r *http.Request, unknown []string) error {
	if len(unknown) == 0 {
		return nil
	}
	msgs := make([]string, len(unknown))
	for i, p := range unknown {
		msgs[i] = fmt.Sprintf("unknown field %q", p)
	}
	switch r.URL.Query().Get("fieldValidation") {
	case "Ignore":
		return nil
	case "Strict":
		return badRequest("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	for _, m := range msgs {
		if w != nil {
			w.Header().Add("Warning", fmt.Sprintf("299 - %q", m))
		}
	}
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// strictDecode unmarshals data into obj honouring fieldValidation. A
// protobuf body (client-go's default for built-in kinds) is decoded as such.
func strictDecode(w http.ResponseWriter, r *http.Request, data []byte, obj any) error {
	if isProtobuf(r) {
		ro, ok := obj.(runtime.Object)
		if !ok {
			return badRequest("protobuf is not accepted for this request")
		}
		return decodeProtobuf(data, ro)
	}
	strictErrs, err := kjson.UnmarshalStrict(data, obj)
	if err != nil {
		return badRequest("the body of the request could not be decoded: %v", err)
	}
	return reportStrict(w, r, strictErrs)
}

// reportStrict reports unknown and duplicate fields as fieldValidation
// asks: a 400 naming them all (Strict), a Warning header for each (Warn,
// the default), or nothing (Ignore).
func reportStrict(w http.ResponseWriter, r *http.Request, strictErrs []error) error {
	if len(strictErrs) == 0 {
		return nil
	}
	switch r.URL.Query().Get("fieldValidation") {
	case "Ignore":
		return nil
	case "Strict":
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return badRequest("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	for _, e := range strictErrs {
		if w == nil {
			break
		}
		w.Header().Add("Warning", fmt.Sprintf("299 - %q", e.Error()))
	}
	return nil
}

// protobufCodec decodes the Kubernetes protobuf envelope for every kind
// client-go knows, and CustomResourceDefinitions.
var protobufCodec = protobuf.NewSerializer(protobufScheme, protobufScheme)

var protobufScheme = func() *runtime.Scheme {
	sch := runtime.NewScheme()
	utilruntime.Must(clientscheme.AddToScheme(sch))
	utilruntime.Must(apiextensionsv1.AddToScheme(sch))
	utilruntime.Must(apiregistrationv1.AddToScheme(sch))
	addViewConversions(sch)
	return sch
}()

// addViewConversions teaches sch to convert between the versions of a
// kind served in several (autoscaling/v1 and v2 HorizontalPodAutoscaler),
// by the registry's conversions: field management needs it to track the
// fields of every version that wrote an object.
func addViewConversions(sch *runtime.Scheme) {
	for _, res := range registry.All() {
		view := res.View
		if view == nil || view.Of.Group != res.Group {
			continue
		}
		utilruntime.Must(sch.AddConversionFunc(res.New(), view.Of.New(), func(a, b any, _ conversion.Scope) error {
			return copyInto(b, view.ToStored(a.(runtime.Object)))
		}))
		utilruntime.Must(sch.AddConversionFunc(view.Of.New(), res.New(), func(a, b any, _ conversion.Scope) error {
			return copyInto(b, view.FromStored(a.(runtime.Object)))
		}))
	}
}

// copyInto sets *dst to *src, both pointers to the same type.
func copyInto(dst any, src runtime.Object) error {
	d, s := reflect.ValueOf(dst), reflect.ValueOf(src)
	if d.Type() != s.Type() {
		return fmt.Errorf("converting to %T: got a %T", dst, src)
	}
	d.Elem().Set(s.Elem())
	return nil
}

const protobufType = "application/vnd.kubernetes.protobuf"

func isProtobuf(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == protobufType
}

func decodeProtobuf(data []byte, into runtime.Object) error {
	out, gvk, err := protobufCodec.Decode(data, nil, into)
	if err != nil {
		return badRequest("the body of the request could not be decoded as protobuf: %v", err)
	}
	if out != into {
		return badRequest("the body of the request has kind %q, which this request does not take", gvk.Kind)
	}
	into.GetObjectKind().SetGroupVersionKind(*gvk)
	return nil
}

// setTypeMeta fills apiVersion and kind, which the typed structs leave
// empty after decoding a stored object.
func setTypeMeta(obj runtime.Object, res *registry.Resource) {
	obj.GetObjectKind().SetGroupVersionKind(res.GroupVersion().WithKind(res.Kind))
}

// decodeStored turns a stored value back into an object at revision rev.
func decodeStored(res *registry.Resource, value []byte, rev int64) (runtime.Object, error) {
	obj, err := registry.DecodeStoredAs(res, value)
	if err != nil {
		return nil, fmt.Errorf("decoding stored %s: %w", res.Kind, err)
	}
	setTypeMeta(obj, res)
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(formatRV(rev))
	return obj, nil
}

// writeJSON writes v with the given status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func setListKind(list runtime.Object, res *registry.Resource) {
	list.GetObjectKind().SetGroupVersionKind(res.GroupVersion().WithKind(res.Kind + "List"))
}
