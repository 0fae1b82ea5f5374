package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
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
	gr := schema.GroupResource{Resource: info.Resource.Name}
	if err := s.serveSubresource(w, r, info); err != nil {
		s.writeStatus(w, r, err, gr, info.Name)
	}
}

// subresources are the subresources served, of some resource or other.
var subresources = map[string]bool{
	"": true, "status": true, "scale": true, "binding": true, "eviction": true, "finalize": true, "approval": true,
	"log": true, "exec": true, "attach": true, "ephemeralcontainers": true,
	"resize": true,
}

func (s *Server) serveSubresource(w *statusRecorder, r *http.Request, info requestInfo) error {
	if !subresources[info.Subresource] {
		// Not a subresource of res: also what an unknown resource under
		// /namespaces/NS/ looks like (namespaces NS, subresource configmaps).
		return notFoundPath(r.URL.Path)
	}
	if info.Verb == "" {
		return methodNotAllowed(r, info.Resource.Name)
	}
	if err := checkWriteOptions(r, info.Verb); err != nil {
		return err
	}
	switch info.Subresource {
	case "":
		return s.serveMain(w, r, info)
	case "status":
		return s.serveStatus(w, r, info)
	case "scale":
		return s.serveScale(w, r, info)
	case "binding":
		return s.serveBinding(w, r, info)
	case "eviction":
		return s.serveEviction(w, r, info)
	case "finalize":
		return s.serveFinalize(w, r, info)
	case "ephemeralcontainers":
		return s.servePodWrite(w, r, info, updateEphemeral)
	case "resize":
		return s.servePodWrite(w, r, info, updateResize)
	case "approval":
		return s.serveApproval(w, r, info)
	}
	return s.servePodStream(w, r, info)
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
		if res.View == nil && writeRaw(w, r, http.StatusOK, kv.Value, kv.ModRevision) {
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
		if info.Name != "" {
			return methodNotAllowed(r, res.Name)
		}
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
	opts, err := parseListOptions(r, res)
	if err != nil {
		return err
	}
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	rev, start, err := listRevision(lq)
	if err != nil {
		return err
	}
	page, err := s.readListPage(r.Context(), res, info.Namespace, opts, rev, start, lq.limit)
	if err != nil {
		switch {
		case lq.cont != "" && errors.Is(err, store.ErrCompacted):
			return expiredContinue(start)
		case lq.cont != "" && errors.Is(err, store.ErrFutureRevision):
			return badRequest("invalid continue token: its revision has not been written")
		}
		return err
	}
	lm := metav1.ListMeta{ResourceVersion: formatRV(page.rev)}
	if page.next != "" {
		lm.Continue = encodeContinue(page.rev, page.next)
		// As upstream: counted only where counting costs no decoding.
		if opts.labels.Empty() && opts.fields.Empty() {
			n, err := s.store.Count(r.Context(), storagePrefix(res, info.Namespace), page.next, page.rev)
			if err != nil {
				return err
			}
			lm.RemainingItemCount = &n
		}
	}
	if res.View == nil && writeRawList(w, r, res, page.raw, lm) {
		return nil
	}
	items := page.items
	for i, kv := range page.raw {
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
	la, _ := meta.ListAccessor(list)
	la.SetResourceVersion(lm.ResourceVersion)
	la.SetContinue(lm.Continue)
	la.SetRemainingItemCount(lm.RemainingItemCount)
	setListKind(list, res)
	return s.writeList(w, r, res, list, items)
}

// encodeContinue is the continue token of a page that goes on at key next
// at revision rev (-1 = at the current revision, when it is read).
func encodeContinue(rev int64, next string) string {
	tok, _ := json.Marshal(continueToken{Rev: rev, Start: next})
	return base64.RawURLEncoding.EncodeToString(tok)
}

// expiredContinue is the 410 answer to a continue token whose revision was
// compacted: as upstream, the Status carries a token that continues from
// the same key at the current revision, for a client that accepts an
// inconsistent list.
func expiredContinue(start string) error {
	st := apierrors.NewResourceExpired("the provided continue parameter is too old to display a consistent list result; start a new list without it, or continue with the token in this response for an inconsistent list (objects created, modified or deleted since the first page may show up)")
	st.ErrStatus.ListMeta.Continue = encodeContinue(-1, start)
	return st
}

// listPage is one page of a list.
type listPage struct {
	raw   []store.KV       // the stored objects that passed the selectors
	items []runtime.Object // raw decoded, where the selectors needed it (else nil)
	rev   int64            // the revision read
	next  string           // the key the next page starts at ("" = no next page)
}

// maxStorePage bounds the keys read from the store at once for a page.
const maxStorePage = 5000

// readListPage reads up to limit objects (0 or less = all) of res in ns
// that pass opts, from key start on, at revision rev (0 = current). It
// reads the store from start on, a store page at a time, so a page of a
// list costs about what it returns rather than the whole namespace.
func (s *Server) readListPage(ctx context.Context, res *registry.Resource, ns string, opts listOptions, rev int64, start string, limit int64) (listPage, error) {
	p := listPage{rev: rev}
	filtered := !opts.labels.Empty() || !opts.fields.Empty()
	n := 0 // keys per store read; 0 = all
	if limit > 0 {
		// One more than the page, to learn where the next one starts.
		n = int(min(limit, maxStorePage)) + 1
		if filtered {
			n = max(n, min(10*n, maxStorePage))
		}
	}
	for {
		kvs, at, more, err := s.store.ListPage(ctx, storagePrefix(res, ns), start, p.rev, n)
		if err != nil {
			return p, err
		}
		p.rev = at
		for _, kv := range kvs {
			if limit > 0 && int64(len(p.raw)) == limit {
				p.next = kv.Key
				return p, nil
			}
			var obj runtime.Object
			if filtered {
				if obj, err = decodeStored(res, kv.Value, kv.ModRevision); err != nil {
					return p, err
				}
				if !opts.matches(res, obj) {
					continue
				}
			}
			p.raw = append(p.raw, kv)
			p.items = append(p.items, obj)
		}
		if !more || len(kvs) == 0 {
			return p, nil
		}
		start = kvs[len(kvs)-1].Key + "\x00"
	}
}

// listRevision turns the list parameters into the store revision to read
// (0 = current) and the key to start from.
func listRevision(lq listQuery) (int64, string, error) {
	if lq.cont != "" {
		data, err := base64.RawURLEncoding.DecodeString(lq.cont)
		var tok continueToken
		if err == nil {
			err = json.Unmarshal(data, &tok)
		}
		if err != nil || tok.Rev == 0 || tok.Rev < -1 {
			return 0, "", badRequest("invalid continue token")
		}
		return max(tok.Rev, 0), tok.Start, nil
	}
	if lq.rv == "" || lq.rv == "0" {
		return 0, "", nil
	}
	n, err := strconv.ParseInt(lq.rv, 10, 64)
	if err != nil || n < 0 {
		return 0, "", badRequest("invalid resourceVersion %q: must be a non-negative integer", lq.rv)
	}
	if lq.match == metav1.ResourceVersionMatchExact {
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
	if isConnect(info) {
		if err := s.admitConnect(r, info); err != nil {
			return err
		}
	}
	s.cfg.PodStreams.ServePodSubresource(w, r, obj.(*corev1.Pod), info.Subresource)
	return nil
}
