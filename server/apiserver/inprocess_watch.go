package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	clientscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
)

// An in-process informer's watch goes through the same request handling
// as any watch (authorization, parameters, resourceVersion semantics,
// bookmarks, errors), but the watcher hands it copies of the objects it
// has decoded, instead of encoding them for the informer to decode.

type objectSinkKey struct{}

// WatchObjects watches the resource named resource (in namespace ns, or
// all namespaces if ns is empty) as user u, with the options a client
// would send. A request the API refuses returns its error (a
// *apierrors.StatusError); a watch that fails later ends with an ERROR
// event, as over HTTP. Objects in events are the receiver's, without
// apiVersion and kind, as client-go's decoders leave them. The watch ends
// when ctx ends or Stop is called. Safe to call concurrently.
func (s *Server) WatchObjects(ctx context.Context, u auth.User, resource, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	res, ok := registry.Lookup(resource)
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: resource}, "")
	}
	opts.Watch = true
	q, err := clientscheme.ParameterCodec.EncodeParameters(&opts, corev1.SchemeGroupVersion)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	path := "/api/v1"
	if res.Group != "" {
		path = "/apis/" + res.GroupVersion().String()
	}
	if ns != "" {
		path += "/namespaces/" + url.PathEscape(ns)
	}
	path += "/" + res.Name
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan watch.Event)
	ctx = context.WithValue(context.WithValue(ctx, loopbackKey{}, u), objectSinkKey{}, (chan<- watch.Event)(events))
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, path+"?"+q.Encode(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	r.Header.Set("Accept", protobufType)
	w := &sinkResponse{header: http.Header{}, ready: make(chan struct{})}
	go func() {
		defer close(events)
		s.ServeHTTP(w, r)
		w.respond(http.StatusOK)
	}()
	<-w.ready
	if w.code != http.StatusOK {
		cancel()
		for range events {
		}
		return nil, w.err()
	}
	return &objectWatch{events: events, cancel: cancel}, nil
}

// sinkResponse is the ResponseWriter of a watch whose events go to a
// sink: it keeps the status and, for a refused request, the body.
type sinkResponse struct {
	header http.Header
	once   sync.Once
	ready  chan struct{} // closed once the status is known
	code   int
	body   []byte // up to the status, then only if it is not 200
}

func (w *sinkResponse) Header() http.Header { return w.header }

func (w *sinkResponse) WriteHeader(code int) { w.respond(code) }

func (w *sinkResponse) respond(code int) {
	w.once.Do(func() {
		w.code = code
		close(w.ready)
	})
}

func (w *sinkResponse) Write(p []byte) (int, error) {
	w.respond(http.StatusOK)
	if w.code != http.StatusOK {
		w.body = append(w.body, p...)
	}
	return len(p), nil
}

func (w *sinkResponse) Flush() {}

// err is the error of a refused request, from the Status it wrote. Only
// once the handler has returned.
func (w *sinkResponse) err() error {
	var st metav1.Status
	if json.Unmarshal(w.body, &st) == nil && st.Status == metav1.StatusFailure {
		return &apierrors.StatusError{ErrStatus: st}
	}
	return apierrors.NewGenericServerResponse(w.code, "watch", schema.GroupResource{}, "", fmt.Sprintf("%q", w.body), 0, false)
}

// objectWatch is the watch.Interface of WatchObjects.
type objectWatch struct {
	events <-chan watch.Event
	cancel context.CancelFunc
}

func (o *objectWatch) ResultChan() <-chan watch.Event { return o.events }

// Stop ends the watch; the result channel closes once the handler has
// returned.
func (o *objectWatch) Stop() { o.cancel() }
