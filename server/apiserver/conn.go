package apiserver

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// refuse makes the answer to a refused request (401, 403) the last one on
// its connection and stops reading its body. Otherwise net/http would read
// up to 256 KiB of the body, with no deadline, before or after answering,
// so that a client without credentials could hold a connection (and a
// file descriptor) open as long as it kept sending a body slowly. Over
// HTTP/2, "Connection: close" makes the server send GOAWAY and the
// deadline resets the stream. It must be called before the header is
// written.
func refuse(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	// Not every writer can (the in-process one has no connection).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// deadlineBody bounds the reading of a request body: its first read sets
// the connection's (HTTP/2: the stream's) read deadline, and reading it to
// the end clears the deadline again, so that nothing that runs after the
// body was read (a watch, an upgraded exec stream) inherits it. A body
// never read sets none.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	armed   bool
}

func newDeadlineBody(body io.ReadCloser, rc *http.ResponseController, timeout time.Duration) *deadlineBody {
	return &deadlineBody{ReadCloser: body, rc: rc, timeout: timeout}
}

// Read reads the body, under the deadline.
func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.armed {
		b.armed = true
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// errBodyTimeout is the answer to a body that did not arrive within
// Config.BodyTimeout.
var errBodyTimeout = &apierrors.StatusError{ErrStatus: metav1.Status{
	Status: metav1.StatusFailure, Code: http.StatusRequestTimeout, Reason: metav1.StatusReasonTimeout,
	Message: "the request body was not received in time",
}}

// bodyReadError is the Status for an error reading a request body.
func bodyReadError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errBodyTimeout
	}
	return badRequest("reading request body: %v", err)
}
