package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// serveApply serves an apply patch (server-side apply). The body is the
// manager's whole configuration of the object: the field manager merges
// it into the live object, or into an empty one to create it, and answers
// 409 naming the fields and their managers when it would take fields
// another manager set, unless force=true. The query's fieldManager is
// required (checkWriteOptions).
func (s *Server) serveApply(w *statusRecorder, r *http.Request, info requestInfo, kind updateKind, patch []byte) error {
	res := info.Resource
	applied := &unstructured.Unstructured{}
	if err := json.Unmarshal(patch, &applied.Object); err != nil {
		return badRequest("error decoding YAML: %v", err)
	}
	if applied.Object == nil {
		return badRequest("the apply patch must be an object")
	}
	if name := applied.GetName(); name != info.Name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", name, info.Name)
	}
	if ns := applied.GetNamespace(); res.Namespaced && ns != "" && ns != info.Namespace {
		return badRequest("the namespace of the provided object (%q) does not match the namespace sent on the request (%q)", ns, info.Namespace)
	}
	if res.Custom != nil {
		if err := checkAppliedFields(w, r, res, applied); err != nil {
			return err
		}
	}
	fm, err := s.fields.get(res, kind)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	manager, force := q.Get("fieldManager"), q.Get("force") == "true"
	apply := func(live runtime.Object) (runtime.Object, error) {
		out, err := fm.Apply(live, applied.DeepCopy(), manager, force)
		if err != nil {
			return nil, applyError(err)
		}
		return typedObject(res, storedTimes(out))
	}
	obj, err := s.updateObject(r.Context(), res, info.Namespace, info.Name, kind, isDryRun(r), apply)
	if errors.Is(err, store.ErrNotFound) && kind == updateMain {
		// Applying to an object that does not exist creates it.
		if obj, err = apply(newLive(res)); err != nil {
			return err
		}
		if res.Namespaced {
			m, _ := meta.Accessor(obj)
			m.SetNamespace(info.Namespace)
		}
		out, stored, err := s.createObject(r.Context(), res, obj, isDryRun(r))
		if errors.Is(err, store.ErrExists) {
			return statusFor(err, schemaGR(res.Name), info.Name)
		}
		if err != nil {
			return err
		}
		return s.writeWritten(w, r, res, http.StatusCreated, out, stored)
	}
	if err != nil {
		return err
	}
	return s.writeWritten(w, r, res, http.StatusOK, obj, nil)
}

// applyError gives an error of the field manager its status: conflicts
// and bad patches already have one (409, 400); the others come from a
// configuration it could not merge (a field not in the kind's schema, a
// list item without its key) and are 400 too.
func applyError(err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewBadRequest(err.Error())
}

// typedObject turns the result of an apply into an object of res: the
// field manager returns built-in kinds as unstructured objects when it
// cannot convert them back itself.
func typedObject(res *registry.Resource, obj runtime.Object) (runtime.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || res.Custom != nil {
		return obj, nil
	}
	out := res.New()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the applied object could not be decoded: %v", err))
	}
	setTypeMeta(out, res)
	return out, nil
}

// checkAppliedFields reports the fields of an applied custom object that
// its schema does not declare, worded as upstream's server-side apply
// words them: a 400 with fieldValidation=Strict, warnings by default.
func checkAppliedFields(w http.ResponseWriter, r *http.Request, res *registry.Resource, applied *unstructured.Unstructured) error {
	unknown := registry.UnknownFields(res, applied)
	if len(unknown) == 0 {
		return nil
	}
	msgs := make([]string, len(unknown))
	for i, p := range unknown {
		msgs[i] = "." + p + ": field not declared in schema"
	}
	switch r.URL.Query().Get("fieldValidation") {
	case "Ignore":
		return nil
	case "Strict":
		return badRequest("failed to create typed patch object (%s; %s): %s",
			applied.GetName(), applied.GroupVersionKind(), strings.Join(msgs, ", "))
	}
	for _, m := range msgs {
		w.Header().Add("Warning", fmt.Sprintf("299 - %q", m))
	}
	return nil
}
