package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// serveResource dispatches a parsed resource request.
func (s *Server) serveResource(w *statusRecorder, r *http.Request, info requestInfo) {
	res := info.Resource
	gr := schema.GroupResource{Resource: res.Name}
	var err error
	switch info.Subresource {
	case "":
		err = s.serveMain(w, r, info)
	case "status":
		err = s.serveStatus(w, r, info)
	case "scale":
		err = s.serveScale(w, r, info)
	case "binding":
		err = s.serveBinding(w, r, info)
	case "eviction":
		err = s.serveEviction(w, r, info)
	case "finalize":
		err = s.serveFinalize(w, r, info)
	case "log", "exec", "attach":
		err = s.servePodStream(w, r, info)
	default:
		// Not a subresource of res: also what an unknown resource under
		// /namespaces/NS/ looks like (namespaces NS, subresource configmaps).
		err = notFoundPath(r.URL.Path)
	}
	if err != nil {
		s.writeStatus(w, r, err, gr, info.Name)
	}
}

func (s *Server) serveMain(w *statusRecorder, r *http.Request, info requestInfo) error {
	ctx := r.Context()
	res := info.Resource
	if res.Namespaced && info.Namespace == "" && (info.Verb == "create" || info.Name != "") {
		return badRequest("%s is a namespaced resource: the request must name a namespace", res.Name)
	}
	switch info.Verb {
	case "get":
		kv, err := s.store.Get(ctx, storageKey(res, info.Namespace, info.Name))
		if err != nil {
			return err
		}
		if writeRaw(w, r, http.StatusOK, kv.Value, kv.ModRevision) {
			return nil
		}
		obj, err := decodeStored(res, kv.Value, kv.ModRevision)
		if err != nil {
			return err
		}
		return s.writeObject(w, r, res, http.StatusOK, obj)
	case "list":
		return s.serveList(w, r, info)
	case "watch":
		return s.serveWatch(w, r, info)
	case "create":
		return s.serveCreate(w, r, info)
	case "update":
		return s.serveUpdate(w, r, info, updateMain)
	case "patch":
		return s.servePatch(w, r, info, updateMain)
	case "delete":
		return s.serveDelete(w, r, info)
	case "deletecollection":
		return s.serveDeleteCollection(w, r, info)
	}
	return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: res.Name}, info.Verb)
}

// getObject reads one object with its revision.
func (s *Server) getObject(ctx context.Context, res *registry.Resource, ns, name string) (runtime.Object, int64, error) {
	kv, err := s.store.Get(ctx, storageKey(res, ns, name))
	if err != nil {
		return nil, 0, err
	}
	obj, err := decodeStored(res, kv.Value, kv.ModRevision)
	return obj, kv.ModRevision, err
}

// listOptions are the parsed filters of a list or watch.
type listOptions struct {
	labels labels.Selector
	fields fields.Selector
}

func parseListOptions(r *http.Request, res *registry.Resource) (listOptions, error) {
	q := r.URL.Query()
	var opts listOptions
	var err error
	if opts.labels, err = labels.Parse(q.Get("labelSelector")); err != nil {
		return opts, badRequest("unable to parse requirement: %v", err)
	}
	if opts.fields, err = fields.ParseSelector(q.Get("fieldSelector")); err != nil {
		return opts, badRequest("invalid field selector: %v", err)
	}
	supported := res.FieldSet(res.New())
	for _, req := range opts.fields.Requirements() {
		if _, ok := supported[req.Field]; !ok {
			return opts, badRequest("field label not supported: %s", req.Field)
		}
	}
	return opts, nil
}

// matches reports whether obj passes the selectors.
func (o listOptions) matches(res *registry.Resource, obj runtime.Object) bool {
	if !o.labels.Empty() {
		m, err := meta.Accessor(obj)
		if err != nil || !o.labels.Matches(labels.Set(m.GetLabels())) {
			return false
		}
	}
	return o.fields.Empty() || o.fields.Matches(res.FieldSet(obj))
}

// continueToken marks where the next page of a list starts.
type continueToken struct {
	Rev   int64  `json:"rv"`
	Start string `json:"start"`
}

func (s *Server) serveList(w *statusRecorder, r *http.Request, info requestInfo) error {
	res := info.Resource
	q := r.URL.Query()
	opts, err := parseListOptions(r, res)
	if err != nil {
		return err
	}
	rev, start, err := listRevision(q.Get("resourceVersion"), q.Get("resourceVersionMatch"), q.Get("continue"))
	if err != nil {
		return err
	}
	limit, _ := strconv.ParseInt(q.Get("limit"), 10, 64)
	kvs, listRev, err := s.store.List(r.Context(), storagePrefix(res, info.Namespace), rev)
	if err != nil {
		if start != "" && apierrors.IsResourceExpired(statusFor(err, schema.GroupResource{}, "")) {
			return apierrors.NewResourceExpired("the provided continue parameter is too old to display a consistent list result; start a new list without it")
		}
		return err
	}
	var items []runtime.Object
	var raw []store.KV
	filtered := !opts.labels.Empty() || !opts.fields.Empty()
	next := ""
	for _, kv := range kvs {
		if kv.Key < start {
			continue
		}
		var obj runtime.Object
		if filtered {
			if obj, err = decodeStored(res, kv.Value, kv.ModRevision); err != nil {
				return err
			}
			if !opts.matches(res, obj) {
				continue
			}
		}
		if limit > 0 && int64(len(raw)) == limit {
			next = kv.Key
			break
		}
		raw = append(raw, kv)
		items = append(items, obj)
	}
	token := ""
	if next != "" {
		tok, _ := json.Marshal(continueToken{Rev: listRev, Start: next})
		token = base64.RawURLEncoding.EncodeToString(tok)
	}
	if writeRawList(w, r, res, raw, listRev, token) {
		return nil
	}
	for i, kv := range raw {
		if items[i] == nil {
			if items[i], err = decodeStored(res, kv.Value, kv.ModRevision); err != nil {
				return err
			}
		}
	}
	list := res.NewList()
	if err := meta.SetList(list, items); err != nil {
		return err
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(formatRV(listRev))
	lm.SetContinue(token)
	setListKind(list, res)
	return s.writeList(w, r, res, list, items)
}

// listRevision turns the list parameters into the store revision to read
// (0 = current) and the key to start from.
func listRevision(rv, match, cont string) (int64, string, error) {
	if cont != "" {
		data, err := base64.RawURLEncoding.DecodeString(cont)
		var tok continueToken
		if err == nil {
			err = json.Unmarshal(data, &tok)
		}
		if err != nil || tok.Rev <= 0 {
			return 0, "", badRequest("invalid continue token")
		}
		return tok.Rev, tok.Start, nil
	}
	if rv == "" || rv == "0" {
		return 0, "", nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, "", badRequest("invalid resourceVersion %q: must be a non-negative integer", rv)
	}
	if match == string(metav1.ResourceVersionMatchExact) {
		return n, "", nil
	}
	return 0, "", nil
}

// servePodStream hands a pod's log, exec or attach request to PodStreams.
func (s *Server) servePodStream(w *statusRecorder, r *http.Request, info requestInfo) error {
	if info.Resource.Name != "pods" || s.cfg.PodStreams == nil {
		return notFoundPath(r.URL.Path)
	}
	obj, _, err := s.getObject(r.Context(), info.Resource, info.Namespace, info.Name)
	if err != nil {
		return err
	}
	s.cfg.PodStreams.ServePodSubresource(w, r, obj.(*corev1.Pod), info.Subresource)
	return nil
}
