package streaming

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"

	"github.com/minik-dev/minik/api"
)

// spdyProtocols are the SPDY remote command versions served, best first.
var spdyProtocols = []string{
	remotecommand.StreamProtocolV4Name,
	remotecommand.StreamProtocolV3Name,
	remotecommand.StreamProtocolV2Name,
}

// streamCreationTimeout bounds the wait for the client's streams.
const streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout

// closeGrace is how long a finished session waits for the client to close
// the connection after reading the outcome, before closing it itself
// (which resets streams whose data the client may not have read).
const closeGrace = 5 * time.Second

type newStream struct {
	stream    httpstream.Stream
	replySent <-chan struct{}
}

// upgradeSPDY upgrades r to SPDY/3.1 and waits for the client's streams
// (error, then stdin, stdout, stderr and resize as the options ask). On
// error the client has been answered or the connection closed.
func upgradeSPDY(w http.ResponseWriter, r *http.Request, opts *api.TunnelExecOptions) (*clientStreams, error) {
	protocol, err := httpstream.Handshake(r, w, spdyProtocols)
	if err != nil {
		return nil, err
	}
	streamc := make(chan newStream)
	upgraded := make(chan struct{})
	defer close(upgraded)
	onStream := func(s httpstream.Stream, replySent <-chan struct{}) error {
		select {
		case streamc <- newStream{s, replySent}:
			return nil
		case <-upgraded:
			return errors.New("unexpected stream")
		}
	}
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, onStream)
	if conn == nil {
		return nil, errors.New("spdy upgrade failed")
	}
	conn.SetIdleTimeout(streamIdleTimeout)

	want := 1 // error
	for _, b := range []bool{opts.Stdin, opts.Stdout, opts.Stderr, opts.Tty && protocol != remotecommand.StreamProtocolV2Name} {
		if b {
			want++
		}
	}
	streams, err := collectStreams(conn, streamc, want)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return spdyClientStreams(conn, streams, opts, protocol == remotecommand.StreamProtocolV4Name), nil
}

// collectStreams waits for want streams and their replies, by stream type.
func collectStreams(conn httpstream.Connection, streamc <-chan newStream, want int) (map[string]httpstream.Stream, error) {
	timer := time.NewTimer(streamCreationTimeout)
	defer timer.Stop()
	streams := map[string]httpstream.Stream{}
	var replies []<-chan struct{}
	for len(replies) < want {
		select {
		case ns := <-streamc:
			typ := ns.stream.Headers().Get(corev1.StreamType)
			switch typ {
			case corev1.StreamTypeError, corev1.StreamTypeStdin, corev1.StreamTypeStdout,
				corev1.StreamTypeStderr, corev1.StreamTypeResize:
			default:
				return nil, fmt.Errorf("unexpected stream type %q", typ)
			}
			if streams[typ] != nil {
				return nil, fmt.Errorf("duplicate stream of type %q", typ)
			}
			streams[typ] = ns.stream
			replies = append(replies, ns.replySent)
		case <-conn.CloseChan():
			return nil, errors.New("connection closed before the streams were created")
		case <-timer.C:
			return nil, errors.New("timed out waiting for the client's streams")
		}
	}
	for _, rs := range replies {
		select {
		case <-rs:
		case <-conn.CloseChan():
			return nil, errors.New("connection closed before the streams were created")
		case <-timer.C:
			return nil, errors.New("timed out waiting for the client's streams")
		}
	}
	if streams[corev1.StreamTypeError] == nil {
		return nil, errors.New("no error stream")
	}
	return streams, nil
}

func spdyClientStreams(conn httpstream.Connection, streams map[string]httpstream.Stream, opts *api.TunnelExecOptions, v4 bool) *clientStreams {
	gone, closed := make(chan struct{}), make(chan struct{})
	go func() {
		<-conn.CloseChan()
		close(gone)
	}()
	var once sync.Once
	abort := func() {
		once.Do(func() {
			close(closed)
			conn.Close()
		})
	}
	cs := &clientStreams{gone: gone, abort: abort}
	// A nil interface, not a nil stream, for the options not asked for.
	if s := streams[corev1.StreamTypeStdin]; s != nil {
		cs.stdin = s
	}
	if s := streams[corev1.StreamTypeStdout]; s != nil {
		cs.stdout = s
	}
	if s := streams[corev1.StreamTypeStderr]; s != nil {
		cs.stderr = s
	}
	if s := streams[corev1.StreamTypeResize]; s != nil && opts.Tty {
		resize := make(chan termSize, 1)
		cs.resize = resize
		go readResizes(s, resize, closed)
	}
	cs.finish = func(st *metav1.Status) {
		for _, typ := range []string{corev1.StreamTypeStdout, corev1.StreamTypeStderr} {
			if s := streams[typ]; s != nil {
				s.Close()
			}
		}
		errStream := streams[corev1.StreamTypeError]
		writeExitStatus(errStream, st, v4)
		errStream.Close()
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-gone:
		case <-t.C:
		}
		abort()
	}
	return cs
}
