package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"

	"github.com/minik-dev/minik/server/registry"
)

// maxJSONPatchOperations bounds the operations of one JSON patch, as in
// Kubernetes: each operation may copy the whole document.
const maxJSONPatchOperations = 10000

func init() {
	// What copy operations may add to a document in all, as Kubernetes
	// sets it (JSONPatchMaxCopyBytes): without it a few doubling copies
	// in a small patch grow the document past any memory.
	jsonpatch.AccumulatedCopySizeLimit = maxBodyBytes
}

// patchTypes are the patch formats served, by Content-Type.
var patchTypes = []string{
	string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType),
	string(types.ApplyYAMLPatchType),
}

func (s *Server) servePatch(w *statusRecorder, r *http.Request, info requestInfo, kind updateKind) error {
	pt, err := patchType(r)
	if err != nil {
		return err
	}
	if pt == types.StrategicMergePatchType && info.Resource.Custom != nil {
		// As upstream: custom objects have no patch strategies.
		return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schemaGR(info.Resource.Name), "",
			"the body of the request was in an unknown format - accepted media types include: "+
				"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml", 0, false)
	}
	patch, err := readObjectBody(w, r)
	if err != nil {
		return err
	}
	if pt == types.ApplyYAMLPatchType {
		return s.serveApply(w, r, info, kind, patch)
	}
	res := info.Resource
	fm, err := s.fields.get(res, kind)
	if err != nil {
		return err
	}
	obj, err := s.updateObject(r.Context(), res, info.Namespace, info.Name, kind, isDryRun(r),
		trackUpdate(fm, managerName(r), func(cur runtime.Object) (runtime.Object, error) {
			return applyPatch(w, r, res, pt, cur, patch)
		}))
	if err != nil {
		return err
	}
	return s.writeWritten(w, r, res, http.StatusOK, obj, nil)
}

func patchType(r *http.Request) (types.PatchType, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	for _, t := range patchTypes {
		if ct == t {
			return types.PatchType(ct), nil
		}
	}
	return "", apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schemaGR(""), "",
		"the body of the request was in an unknown format - accepted media types include: "+
			strings.Join(patchTypes, ", "), 0, false)
}

// applyPatch applies patch to cur and decodes the result into a new object
// of res.
func applyPatch(w http.ResponseWriter, r *http.Request, res *registry.Resource, pt types.PatchType, cur runtime.Object, patch []byte) (runtime.Object, error) {
	original, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	patched, err := patchJSON(pt, original, patch, res.New())
	if err != nil {
		return nil, err
	}
	if len(patched) > maxBodyBytes {
		// As large a result as no create or update could send.
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf(
			"the patched object is %d bytes, more than the limit of %d", len(patched), maxBodyBytes))
	}
	if res.Custom != nil {
		u := &unstructured.Unstructured{}
		if err := registry.UnmarshalCustom(patched, u); err != nil {
			return nil, apierrors.NewBadRequest("the patched object could not be decoded: " + err.Error())
		}
		setTypeMeta(u, res)
		return u, nil
	}
	out := res.New()
	strictErrs, err := kjson.UnmarshalStrict(patched, out)
	if err != nil {
		return nil, apierrors.NewBadRequest("the patched object could not be decoded: " + err.Error())
	}
	if pt != types.JSONPatchType && r.URL.Query().Get("fieldValidation") != "Ignore" {
		// As upstream: fields repeated in the patch itself, which the
		// patched object no longer shows, count too.
		dups, _ := kjson.UnmarshalStrict(patch, &map[string]any{})
		strictErrs = append(dups, strictErrs...)
	}
	if err := reportPatchStrict(w, r, patch, strictErrs); err != nil {
		return nil, err
	}
	setTypeMeta(out, res)
	return out, nil
}

// reportPatchStrict reports the unknown and duplicate fields of a patch
// as reportStrict does, except that Strict answers, as upstream, 422
// Invalid on the field "patch".
func reportPatchStrict(w http.ResponseWriter, r *http.Request, patch []byte, strictErrs []error) error {
	if len(strictErrs) == 0 || r.URL.Query().Get("fieldValidation") != "Strict" {
		return reportStrict(w, r, strictErrs)
	}
	msgs := make([]string, len(strictErrs))
	for i, e := range strictErrs {
		msgs[i] = e.Error()
	}
	return apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{field.Invalid(field.NewPath("patch"),
		string(truncate(patch, 256)), "strict decoding error: "+strings.Join(msgs, ", "))})
}

// patchJSON applies one patch document of type pt to original; schema is
// an empty object of the target type, for strategic merge.
func patchJSON(pt types.PatchType, original, patch []byte, schema any) ([]byte, error) {
	if d := nestingDepth(patch); d > maxPatchDepth {
		return nil, apierrors.NewBadRequest(fmt.Sprintf(
			"the patch could not be applied: it nests %d levels deep, more than the limit of %d", d, maxPatchDepth))
	}
	var out []byte
	var err error
	switch pt {
	case types.JSONPatchType:
		return applyJSONPatch(original, patch)
	case types.MergePatchType:
		out, err = jsonpatch.MergePatch(original, patch)
	case types.StrategicMergePatchType:
		out, err = strategicpatch.StrategicMergePatch(original, patch, schema)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest("the patch could not be applied: " + err.Error())
	}
	return out, nil
}

// applyJSONPatch applies a JSON patch (RFC 6902) to original within the
// limits Kubernetes sets: at most maxJSONPatchOperations operations (413)
// and copies adding at most AccumulatedCopySizeLimit bytes (422).
func applyJSONPatch(original, patch []byte) ([]byte, error) {
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, apierrors.NewBadRequest("the patch could not be applied: " + err.Error())
	}
	if len(p) > maxJSONPatchOperations {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf(
			"The allowed maximum operations in a JSON patch is %d, got %d", maxJSONPatchOperations, len(p)))
	}
	out, err := p.Apply(original)
	var tooMuch *jsonpatch.AccumulatedCopySizeError
	switch {
	case errors.As(err, &tooMuch):
		return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schemaGR(""), "",
			"the patch could not be applied: "+err.Error(), 0, false)
	case err != nil:
		return nil, apierrors.NewBadRequest("the patch could not be applied: " + err.Error())
	}
	return out, nil
}

// maxPatchDepth bounds how deeply a patch document may nest arrays and
// objects. Merge patches cost time quadratic in their depth (the library
// decodes each level again to prune nulls: about 10 s of CPU at the JSON
// decoder's own limit of 10,000), and no object the API serves nests
// anywhere near this deep.
const maxPatchDepth = 256

// nestingDepth returns the deepest nesting of arrays and objects in the
// JSON document b, ignoring brackets inside strings. It reads b once and
// does not validate it: malformed documents are the decoder's to refuse.
func nestingDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
