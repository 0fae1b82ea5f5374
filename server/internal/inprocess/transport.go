// Package inprocess is an http.RoundTripper that serves requests by
// calling an http.Handler in the same process: the API server's loopback,
// through which the controllers, the scheduler and the node service reach
// the API.
package inprocess

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// The transport hands each request straight to the API handler
// with a ResponseWriter that keeps what it writes in memory: there is no
// connection, no HTTP framing and no parsing. A request that cannot stream
// (all but watches and pod streams) runs the handler on the caller's
// goroutine and gets the whole body when it returns. One that may stream
// runs it on a goroutine of its own and gets its response when the handler
// returns or at its first Flush, whichever comes first; the body then
// carries what each later Flush hands over.

// Flushed bytes the client has not read yet are held up to
// maxUnreadStream; past it the handler waits for the client, as it would
// on a full socket. A handler writing that much without a Flush has it
// flushed for it.
const maxUnreadStream = 1 << 20

var (
	// ErrBodyClosed is what a handler writing to a stream and a client
	// reading a body get after the client has closed the body.
	ErrBodyClosed = errors.New("apiserver: loopback response body closed")
	// ErrHandlerPanicked is what a client gets when the handler panicked
	// before responding.
	ErrHandlerPanicked = errors.New("apiserver: loopback handler panicked")
	// ErrStopped is what RoundTrip returns, by default, once the
	// transport's stop context has ended.
	ErrStopped = errors.New("apiserver: loopback stopped")
)

// Options tune a Transport; zero values pick the defaults.
type Options struct {
	// Context, if set, derives the context each request is served in
	// from the client's (to carry the caller's identity, say).
	Context func(context.Context) context.Context
	// Stopped is what RoundTrip returns once stop has ended (default
	// ErrStopped).
	Stopped error
	// Logger logs handlers that panic (default: discard).
	Logger *slog.Logger
}

// Transport is an http.RoundTripper that serves requests by calling h in
// this process, until stop ends.
type Transport struct {
	h    http.Handler
	opts Options
	stop context.Context
	log  *slog.Logger
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns the transport that serves requests with h until stop ends.
func New(stop context.Context, h http.Handler, opts Options) *Transport {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.Stopped == nil {
		opts.Stopped = ErrStopped
	}
	return &Transport{h: h, opts: opts, stop: stop, log: lg}
}

// RoundTrip serves req and returns the handler's response once it is
// complete or, for a request that may stream, once the handler has
// flushed. It is safe to call concurrently.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case <-t.stop.Done():
		closeRequestBody(req)
		return nil, t.opts.Stopped
	default:
	}
	ctx := req.Context()
	if t.opts.Context != nil {
		ctx = t.opts.Context(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &responseWriter{client: req, header: make(http.Header),
		body: &responseBody{ctx: req.Context(), cancel: cancel}, handlerCtx: ctx, stop: t.stop}
	r := serverRequest(ctx, req)
	if !mayStream(req.URL) {
		// The handler runs on the caller's goroutine, whose stack has
		// grown already, and its response is buffered whole.
		w.buffered = true
		t.serve(w, r)
		return w.resp, w.err
	}
	w.ready = make(chan struct{})
	go t.serve(w, r)
	select {
	case <-w.ready:
		return w.resp, w.err
	case <-req.Context().Done():
		// The handler's context derives from the request's: it ends too.
		return nil, req.Context().Err()
	}
}

// mayStream reports whether a request to u may get a response that does
// not end by itself: a watch, or a pod's log, exec, attach, port-forward
// or proxy subresource.
func mayStream(u *url.URL) bool {
	if strings.Contains(u.RawQuery, "watch") {
		if v := u.Query().Get("watch"); v != "" && v != "0" && v != "false" {
			return true
		}
	}
	p := u.Path
	if strings.Contains(p, "/watch/") || strings.Contains(p, "/proxy") {
		return true
	}
	switch p[strings.LastIndexByte(p, '/')+1:] {
	case "log", "exec", "attach", "portforward":
		return true
	}
	return false
}

// serve runs the handler for r and completes w when it returns.
func (t *Transport) serve(w *responseWriter, r *http.Request) {
	defer func() {
		p := recover()
		w.finish(p != nil)
		if w.stopStream != nil {
			w.stopStream()
		}
		w.body.cancel()
		closeRequestBody(r)
		if p != nil && p != http.ErrAbortHandler {
			t.log.Error("loopback handler panicked", "method", r.Method, "path", r.URL.Path,
				"panic", p, "stack", string(debug.Stack()))
		}
	}()
	t.h.ServeHTTP(w, r)
}

func closeRequestBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// serverRequest is the request the handler sees: what a server would
// have parsed from req, in ctx. The body and header are the client's, not
// copies; the handler must not change the header.
func serverRequest(ctx context.Context, req *http.Request) *http.Request {
	r := req.WithContext(ctx)
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.RequestURI = r.URL.RequestURI()
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	r.RemoteAddr = "loopback"
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.GetBody, r.Close, r.Response, r.Cancel = nil, false, nil, nil
	return r
}

// responseWriter is the http.ResponseWriter and http.Flusher of one
// loopback request. Its methods run on the handler's goroutine only.
type responseWriter struct {
	client  *http.Request
	header  http.Header
	code    int    // 0 until WriteHeader
	pending []byte // written since the last flush

	// buffered is set when the response is returned only when the
	// handler ends (Flush does not return it early).
	buffered bool
	// ready, if not nil, is closed when resp or err is set for RoundTrip.
	ready chan struct{}
	resp  *http.Response
	err   error

	body       *responseBody
	handlerCtx context.Context
	stop       context.Context // the loopback's
	stopStream func() bool     // set while streaming: unregisters from stop
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
)

// Header is the response header; changes after WriteHeader are ignored.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader records the status code; informational codes and calls
// after the first are ignored.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("apiserver: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.code != 0 || code < 200 {
		return
	}
	w.code = code
}

// Write adds p to the response body.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.code) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.client.Method == http.MethodHead {
		return len(p), nil
	}
	streaming := w.resp != nil
	if streaming && w.body.closed.Load() {
		return 0, ErrBodyClosed
	}
	if w.pending == nil {
		w.pending = getBuffer()
	}
	w.pending = append(w.pending, p...)
	if streaming && len(w.pending) >= maxUnreadStream {
		if err := w.push(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// SetWriteDeadline, which http.ResponseController calls, ends the
// handler at once for a deadline that has passed, as a socket's write
// deadline ends a write the client is not reading (a watch cuts off a
// client that fell behind so); later deadlines are not supported. Safe to
// call concurrently with the handler.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	if t.After(time.Now()) {
		return http.ErrNotSupported
	}
	w.body.cancel()
	return nil
}

// Flush returns the response to the client now, if it has not been yet,
// and hands it what was written since the last Flush.
func (w *responseWriter) Flush() {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.buffered {
		return
	}
	if w.resp == nil {
		w.startStream()
	}
	w.push()
}

// startStream returns the response with a body that the handler's later
// flushes feed.
func (w *responseWriter) startStream() {
	b := w.body
	b.readable = make(chan struct{}, 1)
	b.drained = make(chan struct{}, 1)
	// A stream lasts as long as the handler likes: it must end when the
	// loopback stops, as a connection would be closed.
	w.stopStream = context.AfterFunc(w.stop, b.cancel)
	h := w.header.Clone()
	w.deliver(h, -1)
}

// push hands the pending bytes to the client, waiting while it has more
// than maxUnreadStream unread.
func (w *responseWriter) push() error {
	if len(w.pending) == 0 {
		return nil
	}
	var err error
	w.pending, err = w.body.push(w.handlerCtx, w.pending)
	return err
}

// finish completes the response when the handler returns: the whole
// response if none was returned yet, else the end of the stream.
func (w *responseWriter) finish(panicked bool) {
	if w.resp != nil {
		end := io.EOF
		if panicked {
			end = io.ErrUnexpectedEOF
		}
		w.push()
		w.body.end(end)
		return
	}
	if panicked {
		w.err = ErrHandlerPanicked
		w.signalReady()
		return
	}
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body.buf, w.pending = w.pending, nil
	w.body.done, w.body.err = true, io.EOF
	w.deliver(w.header, int64(len(w.body.buf)))
}

// deliver makes the response for header h and gives it to RoundTrip.
func (w *responseWriter) deliver(h http.Header, length int64) {
	_, hasType := h["Content-Type"]
	_, hasTE := h["Transfer-Encoding"]
	if !hasType && !hasTE && len(w.pending)+len(w.body.buf) > 0 {
		// As net/http does for handlers that set no type.
		sniff := w.pending
		if len(sniff) == 0 {
			sniff = w.body.buf
		}
		h.Set("Content-Type", http.DetectContentType(sniff))
	}
	// A client reads framing from the response's fields, not the header.
	delete(h, "Transfer-Encoding")
	w.resp = &http.Response{
		Status: statusLine(w.code), StatusCode: w.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: w.body, ContentLength: length, Request: w.client,
	}
	w.signalReady()
}

func (w *responseWriter) signalReady() {
	if w.ready != nil {
		close(w.ready)
	}
}

func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified
}

// statusLines holds the Status of responses for each known code.
var statusLines = func() map[int]string {
	m := map[int]string{}
	for c := 100; c < 600; c++ {
		if t := http.StatusText(c); t != "" {
			m[c] = strconv.Itoa(c) + " " + t
		}
	}
	return m
}()

func statusLine(code int) string {
	if s, ok := statusLines[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}
