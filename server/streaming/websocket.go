package streaming

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/minik-dev/minik/api"
)

// WebSocket subprotocols of the remote command channels. v4 and later
// carry a JSON Status on the error channel; v5 adds the half-close of
// stdin.
const (
	wsV5       = remotecommand.StreamProtocolV5Name // "v5.channel.k8s.io"
	wsV4       = "v4.channel.k8s.io"
	wsV4Base64 = "v4.base64.channel.k8s.io"
)

// streamIdleTimeout closes a session whose connection carried nothing for
// this long (clients ping more often).
const streamIdleTimeout = 4 * time.Hour

// upgradeWebSocket upgrades r to a channel WebSocket (0 stdin, 1 stdout,
// 2 stderr, 3 error, 4 resize). On error the client has been answered.
func upgradeWebSocket(w http.ResponseWriter, r *http.Request, opts *api.TunnelExecOptions) (*clientStreams, error) {
	channels := make([]wsstream.ChannelType, 5)
	if opts.Stdin {
		channels[remotecommand.StreamStdIn] = wsstream.ReadChannel
	}
	if opts.Stdout {
		channels[remotecommand.StreamStdOut] = wsstream.WriteChannel
	}
	if opts.Stderr {
		channels[remotecommand.StreamStdErr] = wsstream.WriteChannel
	}
	channels[remotecommand.StreamErr] = wsstream.WriteChannel
	channels[remotecommand.StreamResize] = wsstream.ReadChannel
	protocols := wsstream.NewDefaultChannelProtocols(channels)
	protocols[wsV5] = wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	protocols[wsV4] = wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	protocols[wsV4Base64] = wsstream.ChannelProtocolConfig{Binary: false, Channels: channels}

	conn := wsstream.NewConn(protocols)
	conn.SetIdleTimeout(streamIdleTimeout)
	// The connection logs through the request's klog logger, and reports
	// our own closing of it as an error: keep that out of the server log.
	r = r.WithContext(klog.NewContext(r.Context(), logr.Discard()))
	protocol, streams, err := conn.Open(w, r)
	if err != nil {
		return nil, err
	}
	gone, closed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	closeConn := func() {
		once.Do(func() {
			close(closed)
			conn.Close()
		})
	}
	cs := &clientStreams{gone: gone, abort: closeConn}
	if opts.Stdin {
		cs.stdin = streams[remotecommand.StreamStdIn]
	}
	if opts.Stdout {
		cs.stdout = streams[remotecommand.StreamStdOut]
	}
	if opts.Stderr {
		cs.stderr = streams[remotecommand.StreamStdErr]
	}
	var resize chan termSize
	if opts.Tty {
		resize = make(chan termSize, 1)
		cs.resize = resize
	}
	// The client never closes the resize channel by itself: its end means
	// the connection is gone.
	go func() {
		readResizes(streams[remotecommand.StreamResize], resize, closed)
		close(gone)
	}()
	errStream := streams[remotecommand.StreamErr]
	v4 := protocol == wsV5 || protocol == wsV4 || protocol == wsV4Base64
	cs.finish = func(st *metav1.Status) {
		writeExitStatus(errStream, st, v4)
		closeConn()
	}
	return cs, nil
}

// readResizes decodes JSON terminal sizes from r until it ends, sending
// them to sizes (if not nil), which it closes at the end. It stops
// when stop is closed.
func readResizes(r io.Reader, sizes chan termSize, stop <-chan struct{}) {
	if sizes != nil {
		defer close(sizes)
	}
	dec := json.NewDecoder(r)
	for {
		var sz struct{ Width, Height uint16 }
		if err := dec.Decode(&sz); err != nil {
			if err != io.EOF {
				io.Copy(io.Discard, r) // keep draining until the end
			}
			return
		}
		if sizes == nil {
			continue
		}
		select {
		case sizes <- termSize{sz.Width, sz.Height}:
		case <-stop:
			return
		}
	}
}

// writeExitStatus writes the outcome on the error stream: a JSON Status
// (v4 and later; success too), else the failure message as text.
func writeExitStatus(w io.Writer, st *metav1.Status, v4 bool) {
	if !v4 {
		if st != nil {
			w.Write([]byte(st.Message))
		}
		return
	}
	if st == nil {
		st = &metav1.Status{Status: metav1.StatusSuccess}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	w.Write(b)
}
