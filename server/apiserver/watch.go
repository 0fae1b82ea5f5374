package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// watchEvent is one line of a watch stream.
type watchEvent struct {
	Type   watch.EventType `json:"type"`
	Object any             `json:"object"`
}

// watcher streams one watch request.
type watcher struct {
	s        *Server
	w        *statusRecorder
	r        *http.Request
	res      *registry.Resource
	opts     listOptions
	out      outputKind
	version  string
	enc      *json.Encoder
	bookmark bool
	lastMark time.Time
}

func (s *Server) serveWatch(w *statusRecorder, r *http.Request, info requestInfo) error {
	res := info.Resource
	q := r.URL.Query()
	opts, err := parseListOptions(r, res)
	if err != nil {
		return err
	}
	prefix := storagePrefix(res, info.Namespace)
	if name, one := watchedName(info, opts); one {
		// A watch of one object follows its key alone.
		prefix = storageKey(res, info.Namespace, name)
		opts.fields = fields.AndSelectors(opts.fields, fields.OneTermEqualSelector("metadata.name", name))
	}
	out, version, err := negotiate(r)
	if err != nil {
		return err
	}
	if out == outputProtobuf && !canProtobuf(res) {
		out = outputObject
	}
	initial, err := wantInitialEvents(q.Get("sendInitialEvents"), q.Get("resourceVersionMatch"), isTrue(q.Get("allowWatchBookmarks")))
	if err != nil {
		return err
	}
	rv := q.Get("resourceVersion")
	var from int64
	if rv != "" && rv != "0" {
		if from, err = strconv.ParseInt(rv, 10, 64); err != nil || from < 0 {
			return badRequest("invalid resourceVersion %q: must be a non-negative integer", rv)
		}
	}
	if q.Get("sendInitialEvents") == "" && (rv == "" || rv == "0") {
		initial = true
	}
	timeout := s.cfg.MaxWatchDuration
	if t, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && t > 0 && time.Duration(t)*time.Second < timeout {
		timeout = time.Duration(t) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	wt := &watcher{s: s, w: w, r: r, res: res, opts: opts, out: out, version: version,
		bookmark: isTrue(q.Get("allowWatchBookmarks")), lastMark: time.Now()}
	var snapshot []store.KV
	if initial {
		// The snapshot and the watch start at one revision, so nothing
		// falls between them.
		if snapshot, from, err = s.store.List(ctx, prefix, 0); err != nil {
			return err
		}
	}
	events, err := s.store.Watch(ctx, prefix, from)
	if out == outputProtobuf {
		w.Header().Set("Content-Type", protobufWatchType)
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	wt.enc = json.NewEncoder(w)
	if err != nil {
		wt.sendError(err)
		return nil
	}
	s.metrics.watchers(1)
	defer s.metrics.watchers(-1)
	wt.run(ctx, snapshot, from, initial && q.Get("sendInitialEvents") == "true", events)
	return nil
}

// watchedName is the name of the one object a watch follows: named in
// its path, or by a field selector metadata.name=NAME. A namespaced
// resource's objects are one only within a namespace.
func watchedName(info requestInfo, opts listOptions) (string, bool) {
	if info.Name != "" {
		return info.Name, true
	}
	if info.Resource.Namespaced && info.Namespace == "" {
		return "", false
	}
	return opts.fields.RequiresExactMatch("metadata.name")
}

// wantInitialEvents checks the streaming-list parameters.
func wantInitialEvents(send, match string, bookmarks bool) (bool, error) {
	if send == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(send)
	if err != nil {
		return false, badRequest("invalid sendInitialEvents %q", send)
	}
	if !v {
		return false, nil
	}
	var errs field.ErrorList
	if match != string(metav1.ResourceVersionMatchNotOlderThan) {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"),
			"sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
	}
	if !bookmarks {
		errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"),
			"sendInitialEvents requires setting allowWatchBookmarks to true"))
	}
	if len(errs) > 0 {
		return false, apierrors.NewInvalid(metaGK("ListOptions"), "", errs)
	}
	return true, nil
}

// run streams the snapshot, then the events, until ctx ends, the events
// end or the client falls more than Config.WatchBufferBytes behind.
func (wt *watcher) run(ctx context.Context, snapshot []store.KV, rev int64, endMarker bool, events <-chan store.Event) {
	ctx, cancel := context.WithCancel(ctx)
	filled := make(chan struct{})
	defer func() {
		cancel()
		<-filled // no cut once the response is done with
	}()
	queue := newWatchQueue(wt.s.cfg.WatchBufferBytes)
	go queue.fill(ctx, filled, events, func() {
		wt.s.log.Info("watch cut off: the client fell behind", "resource", wt.res.Name,
			"limit", wt.s.cfg.WatchBufferBytes)
		cancel()
		// Unblock a write the client is not reading.
		http.NewResponseController(wt.w).SetWriteDeadline(time.Now())
	})
	for _, kv := range snapshot {
		obj, err := decodeStored(wt.res, kv.Value, kv.ModRevision)
		if err != nil || !wt.opts.matches(wt.res, obj) {
			continue
		}
		if !wt.send(watch.Added, obj) {
			return
		}
	}
	if endMarker {
		if !wt.sendBookmark(rev, true) {
			return
		}
	}
	wt.w.Flush()
	for {
		evs, ok := queue.take(ctx)
		if !ok {
			return
		}
		for _, ev := range evs {
			if !wt.handle(ev) {
				wt.w.Flush()
				return
			}
		}
		wt.w.Flush()
	}
}

// handle turns one store event into at most one watch event; false ends
// the stream.
func (wt *watcher) handle(ev store.Event) bool {
	switch ev.Type {
	case store.EventError:
		wt.sendError(ev.Err)
		return false
	case store.EventProgress:
		if wt.bookmark && time.Since(wt.lastMark) >= wt.s.cfg.BookmarkInterval {
			return wt.sendBookmark(ev.Revision, false)
		}
		return true
	}
	filtered := !wt.opts.labels.Empty() || !wt.opts.fields.Empty()
	if !filtered && wt.out == outputObject {
		return wt.sendStored(eventType(ev.Type), ev.Key, ev.Value, ev.Revision)
	}
	if !filtered && wt.out == outputProtobuf {
		return wt.sendShared(eventType(ev.Type), ev, nil)
	}
	obj, err := wt.s.decodeShared(wt.res, ev.Key, ev.Value, ev.Revision)
	if err != nil {
		return wt.undecodable(ev.Key, err)
	}
	newMatch := wt.opts.matches(wt.res, obj)
	t := eventType(ev.Type)
	if ev.Type == store.EventUpdate && filtered {
		oldMatch := newMatch
		if old, err := decodeStored(wt.res, ev.PrevValue, ev.Revision); err == nil {
			oldMatch = wt.opts.matches(wt.res, old)
		}
		switch {
		case newMatch && !oldMatch:
			t = watch.Added
		case oldMatch && !newMatch:
			// The object left the selection: Kubernetes reports it deleted.
			t, newMatch = watch.Deleted, true
		}
	}
	if !newMatch {
		return true
	}
	switch wt.out {
	case outputObject:
		return wt.sendStored(t, ev.Key, ev.Value, ev.Revision)
	case outputProtobuf:
		return wt.sendShared(t, ev, obj)
	}
	return wt.send(t, obj)
}

func eventType(t store.EventType) watch.EventType {
	switch t {
	case store.EventCreate:
		return watch.Added
	case store.EventDelete:
		return watch.Deleted
	}
	return watch.Modified
}

// sendStored writes a JSON event for a stored change, whose object is
// made once for every JSON watcher: from the stored bytes when they are
// JSON, else by decoding them and encoding the object, as a read would.
func (wt *watcher) sendStored(t watch.EventType, key string, value []byte, rev int64) bool {
	obj, err := wt.s.jsonEvents.get(cacheKey(wt.res, key), rev, func() ([]byte, error) {
		if obj := registry.JSONWithResourceVersion(value, rev); obj != nil && wt.res.View == nil {
			return obj, nil
		}
		// Not the shared object: a write's copy of it may hold an empty
		// list where decoding gives none, which JSON tells apart.
		decoded, err := decodeStored(wt.res, value, rev)
		if err != nil {
			return nil, err
		}
		return json.Marshal(decoded)
	})
	if err != nil {
		return wt.undecodable(key, err)
	}
	line := make([]byte, 0, len(obj)+32)
	line = append(line, `{"type":"`...)
	line = append(line, t...)
	line = append(line, `","object":`...)
	line = append(line, obj...)
	line = append(line, "}\n"...)
	_, err = wt.w.Write(line)
	return err == nil
}

// sendShared writes a protobuf event for the store change ev, whose object
// is made once for every protobuf watcher: from the stored bytes when
// they are protobuf, else by encoding the object. obj is ev's object if
// the caller has decoded it, else nil.
func (wt *watcher) sendShared(t watch.EventType, ev store.Event, obj runtime.Object) bool {
	data, err := wt.s.events.get(cacheKey(wt.res, ev.Key), ev.Revision, func() ([]byte, error) {
		if data := registry.ProtobufWithResourceVersion(ev.Value, ev.Revision); data != nil && wt.res.View == nil {
			return data, nil
		}
		if obj == nil {
			var err error
			if obj, err = wt.s.decodeShared(wt.res, ev.Key, ev.Value, ev.Revision); err != nil {
				return nil, err
			}
		}
		return encodeProtobuf(obj)
	})
	if err != nil {
		return wt.undecodable(ev.Key, err)
	}
	return wt.writeFrame(t, data)
}

// undecodable ends the watch with an ERROR event when a stored change
// cannot be decoded: skipping it would leave the client's view silently
// wrong, while an error makes it list again.
func (wt *watcher) undecodable(key string, err error) bool {
	wt.s.log.Error("watch: stored object cannot be decoded", "key", key, "err", err)
	wt.sendError(apierrors.NewInternalError(fmt.Errorf("decoding %s from storage: %w", key, err)))
	return false
}

// writeFrame writes one protobuf watch event whose object is the envelope
// data.
func (wt *watcher) writeFrame(t watch.EventType, data []byte) bool {
	frame, err := watchFrame(t, data)
	if err != nil {
		return false
	}
	_, err = wt.w.Write(frame)
	return err == nil
}

// emit writes one event in the stream's encoding.
func (wt *watcher) emit(t watch.EventType, obj runtime.Object) bool {
	if wt.out != outputProtobuf {
		return wt.enc.Encode(watchEvent{Type: t, Object: obj}) == nil
	}
	data, err := encodeProtobuf(obj)
	if err != nil {
		return false
	}
	return wt.writeFrame(t, data)
}

func (wt *watcher) send(t watch.EventType, obj runtime.Object) bool {
	if wt.out == outputProtobuf {
		return wt.emit(t, obj)
	}
	var out any = obj
	switch wt.out {
	case outputTable:
		tbl := wt.s.table(wt.r, wt.res, []runtime.Object{obj}, wt.version)
		if m, err := meta.Accessor(obj); err == nil {
			tbl.ResourceVersion = m.GetResourceVersion()
		}
		out = tbl
	case outputPartialMetadata:
		out = partialMetadata(obj, wt.version)
	}
	return wt.enc.Encode(watchEvent{Type: t, Object: out}) == nil
}

func (wt *watcher) sendBookmark(rev int64, initialEnd bool) bool {
	wt.lastMark = time.Now()
	obj := wt.res.New()
	setTypeMeta(obj, wt.res)
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(formatRV(rev))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	if wt.out == outputPartialMetadata {
		// A metadata client decodes every event as PartialObjectMetadata:
		// a bookmark of the kind itself would end its watch.
		obj = partialMetadata(obj, wt.version)
	}
	if !wt.emit(watch.Bookmark, obj) {
		return false
	}
	wt.w.Flush()
	return true
}

func (wt *watcher) sendError(err error) {
	st := statusFor(err, schemaGR(wt.res.Name), "").Status()
	st.Kind, st.APIVersion = "Status", "v1"
	wt.emit(watch.Error, &st)
	wt.w.Flush()
}
