package streaming

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"golang.org/x/net/websocket"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// WebSocket subprotocols of a log stream, as Kubernetes serves them: each
// message is a piece of the log, raw or base64 text. A client naming no
// subprotocol gets raw messages.
const (
	wsLogBinary = "binary.k8s.io"
	wsLogBase64 = "base64.binary.k8s.io"
)

// wsLogChunk is the most log one message carries.
const wsLogChunk = 2048

// serveLogsWebSocket streams the logs of sess over a WebSocket: an empty
// first message, then the output, then the connection closes when the
// log ends. As over HTTP, the upgrade waits for the first output (or,
// following, for followHeaderDelay), so an error the node finds at once
// is answered as a Status instead.
func (s *Server) serveLogsWebSocket(w http.ResponseWriter, r *http.Request, sess *session, node string, follow bool) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	pr, pw := io.Pipe()
	defer pr.Close()
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		res, err := sess.relay(ctx, clientInput{}, pw, pw, nil)
		if err != nil {
			err = tunnelError(node, err)
		} else {
			err = resultError(res)
		}
		pw.CloseWithError(err) // nil: the reader sees EOF
	}()
	defer func() { <-relayed }()
	defer cancel()

	out := bufio.NewReaderSize(pr, wsLogChunk)
	peeked := make(chan error, 1)
	go func() {
		_, err := out.Peek(1)
		peeked <- err
	}()
	var wait <-chan time.Time
	if follow {
		t := time.NewTimer(followHeaderDelay)
		defer t.Stop()
		wait = t.C
	}
	peekDone := false
	select {
	case err := <-peeked:
		if err != nil && !errors.Is(err, io.EOF) {
			writeStatus(w, err)
			return
		}
		peekDone = true
	case <-wait:
	}
	srv := websocket.Server{Handshake: logHandshake, Handler: func(ws *websocket.Conn) {
		go func() {
			// The client sends nothing; its close ends the stream.
			wsstream.IgnoreReceives(ws, 0)
			cancel()
		}()
		if !peekDone {
			<-peeked // out is read by one goroutine at a time
		}
		err := sendLog(ws, out, ws.Config().Protocol[0] == wsLogBase64)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Debug("log stream ended", "node", node, "err", err)
		}
	}}
	srv.ServeHTTP(w, r)
}

// logHandshake picks the first subprotocol the client offers that a log
// stream speaks; a client offering none gets raw messages.
func logHandshake(cfg *websocket.Config, _ *http.Request) error {
	if len(cfg.Protocol) == 0 {
		cfg.Protocol = []string{""}
		return nil
	}
	for _, p := range cfg.Protocol {
		if p == wsLogBinary || p == wsLogBase64 {
			cfg.Protocol = []string{p}
			return nil
		}
	}
	return fmt.Errorf("requested protocol(s) are not supported: %v; supports %v", cfg.Protocol, []string{wsLogBinary, wsLogBase64})
}

// sendLog sends an empty message, then what r holds in messages of at
// most wsLogChunk bytes, base64-encoded if asked, until r ends.
func sendLog(ws *websocket.Conn, r io.Reader, b64 bool) error {
	send := func(p []byte) error {
		if b64 {
			return websocket.Message.Send(ws, base64.StdEncoding.EncodeToString(p))
		}
		return websocket.Message.Send(ws, slices.Clone(p))
	}
	if err := send(nil); err != nil {
		return err
	}
	buf := make([]byte, wsLogChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
