package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// maxChunk is the most output one frame carries.
const maxChunk = 32 << 10

// resultAckTimeout bounds the wait for the server to end a data stream
// after the result was sent.
const resultAckTimeout = 10 * time.Second

// session relays one data stream to one Streamer call.
type session struct {
	stream api.Tunnel_StreamClient
	req    *api.TunnelRequest
	sendc  chan *api.TunnelFrame // output frames for the send loop

	// Set when the request has stdin: the recv goroutine writes stdinW,
	// the call reads stdinR.
	stdinR *io.PipeReader
	stdinW *io.PipeWriter
	// resize is set for a tty; the recv goroutine sends (newest size
	// wins) and closes it.
	resize chan pods.TermSize
}

func newSession(stream api.Tunnel_StreamClient, req *api.TunnelRequest) *session {
	s := &session{stream: stream, req: req, sendc: make(chan *api.TunnelFrame)}
	if req.GetKind() == api.TunnelKind_TUNNEL_KIND_DIAL {
		s.stdinR, s.stdinW = io.Pipe()
	}
	if o := req.GetExec(); o != nil {
		if o.GetStdin() {
			s.stdinR, s.stdinW = io.Pipe()
		}
		if o.GetTty() {
			s.resize = make(chan pods.TermSize, 1)
		}
	}
	return s
}

// run relays until the call has returned and its result is delivered, or
// the stream fails (then it cancels the call and waits for it). cancel
// cancels ctx.
func (s *session) run(ctx context.Context, cancel context.CancelFunc, st pods.Streamer) error {
	errc := make(chan error, 1)
	go func() { errc <- s.recvInput() }()
	donec := make(chan *api.TunnelResult, 1)
	go func() { donec <- s.call(ctx, st) }()
	for {
		select {
		case f := <-s.sendc:
			if err := s.stream.Send(f); err != nil {
				cancel()
				<-donec
				return err
			}
		case res := <-donec:
			// Writes hand their frames over unbuffered, and the loop sends
			// each before taking the next: all output is out.
			if err := s.stream.Send(&api.TunnelFrame{Frame: &api.TunnelFrame_Result{Result: res}}); err != nil {
				return err
			}
			s.stream.CloseSend()
			t := time.NewTimer(resultAckTimeout)
			defer t.Stop()
			select {
			case <-errc:
			case <-t.C:
			case <-ctx.Done():
			}
			return nil
		case err := <-errc:
			// The server ended the session first: its client went away.
			cancel()
			<-donec
			return err
		}
	}
}

// recvInput delivers the server's stdin and resize frames until the
// stream ends.
func (s *session) recvInput() error {
	defer func() {
		if s.stdinW != nil {
			s.stdinW.Close()
		}
		if s.resize != nil {
			close(s.resize)
		}
	}()
	for {
		f, err := s.stream.Recv()
		if err != nil {
			return err
		}
		switch fr := f.Frame.(type) {
		case *api.TunnelFrame_Stdin:
			if s.stdinW != nil {
				// Blocks until the command reads it; fails once the call
				// is over, and later stdin is dropped.
				s.stdinW.Write(fr.Stdin)
			}
		case *api.TunnelFrame_StdinEof:
			if s.stdinW != nil {
				s.stdinW.Close()
			}
		case *api.TunnelFrame_Resize:
			if s.resize != nil {
				s.sendResize(pods.TermSize{Width: uint16(fr.Resize.GetWidth()), Height: uint16(fr.Resize.GetHeight())})
			}
		}
	}
}

// sendResize queues sz, replacing a size the call has not taken yet.
func (s *session) sendResize(sz pods.TermSize) {
	for {
		select {
		case s.resize <- sz:
			return
		default:
		}
		select {
		case <-s.resize:
		default:
		}
	}
}

// call runs the request's Streamer call and returns its result.
func (s *session) call(ctx context.Context, st pods.Streamer) *api.TunnelResult {
	if s.stdinR != nil {
		defer s.stdinR.CloseWithError(io.ErrClosedPipe)
	}
	req := s.req
	pod := types.NamespacedName{Namespace: req.GetNamespace(), Name: req.GetPod()}
	stdout := &frameWriter{ctx: ctx, sendc: s.sendc}
	switch req.GetKind() {
	case api.TunnelKind_TUNNEL_KIND_LOGS:
		err := st.Logs(ctx, pod, req.GetContainer(), logOptions(req), stdout)
		return resultOf(0, err)
	case api.TunnelKind_TUNNEL_KIND_EXEC:
		if len(req.GetExec().GetCommand()) == 0 {
			return &api.TunnelResult{Code: api.TunnelResult_CODE_INVALID, Message: "no command"}
		}
		code, err := st.Exec(ctx, pod, req.GetContainer(), req.GetExec().GetCommand(), s.streams(ctx))
		return resultOf(code, err)
	case api.TunnelKind_TUNNEL_KIND_ATTACH:
		a, ok := st.(Attacher)
		if !ok {
			return &api.TunnelResult{Code: api.TunnelResult_CODE_UNSUPPORTED, Message: "attach is not supported by this node"}
		}
		return resultOf(0, a.Attach(ctx, pod, req.GetContainer(), s.streams(ctx)))
	case api.TunnelKind_TUNNEL_KIND_DIAL:
		return s.dial(ctx, st, pod)
	}
	return &api.TunnelResult{Code: api.TunnelResult_CODE_INVALID, Message: fmt.Sprintf("unknown request kind %v", req.GetKind())}
}

// streams are the exec streams the request asks for.
func (s *session) streams(ctx context.Context) pods.ExecStreams {
	o := s.req.GetExec()
	var es pods.ExecStreams
	if s.stdinR != nil {
		es.Stdin = s.stdinR
	}
	if o.GetStdout() {
		es.Stdout = &frameWriter{ctx: ctx, sendc: s.sendc}
	}
	if o.GetStderr() && !o.GetTty() {
		es.Stderr = &frameWriter{ctx: ctx, sendc: s.sendc, stderr: true}
	}
	es.TTY = o.GetTty()
	if s.resize != nil {
		es.Resize = s.resize
	}
	return es
}

func logOptions(req *api.TunnelRequest) *corev1.PodLogOptions {
	l := req.GetLogs()
	opts := &corev1.PodLogOptions{
		Container:    req.GetContainer(),
		Follow:       l.GetFollow(),
		Previous:     l.GetPrevious(),
		Timestamps:   l.GetTimestamps(),
		TailLines:    l.TailLines,
		SinceSeconds: l.SinceSeconds,
		LimitBytes:   l.LimitBytes,
	}
	if l.SinceTimeUnixNano != nil {
		t := metav1.NewTime(time.Unix(0, *l.SinceTimeUnixNano))
		opts.SinceTime = &t
	}
	return opts
}

// resultOf is the result of a call that returned code and err.
func resultOf(code int, err error) *api.TunnelResult {
	switch {
	case err == nil:
		return &api.TunnelResult{ExitCode: int32(code)}
	case errors.Is(err, pods.ErrNotFound):
		return &api.TunnelResult{Code: api.TunnelResult_CODE_NOT_FOUND, Message: err.Error()}
	case errors.Is(err, pods.ErrNoStdin):
		return &api.TunnelResult{Code: api.TunnelResult_CODE_INVALID, Message: err.Error()}
	}
	return &api.TunnelResult{Code: api.TunnelResult_CODE_ERROR, Message: err.Error()}
}

// frameWriter sends what is written as stdout or stderr frames. Write
// returns once the send loop has taken every frame.
type frameWriter struct {
	ctx    context.Context
	sendc  chan<- *api.TunnelFrame
	stderr bool
}

func (w *frameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxChunk)
		data := bytes.Clone(p[:n])
		f := &api.TunnelFrame{Frame: &api.TunnelFrame_Stdout{Stdout: data}}
		if w.stderr {
			f = &api.TunnelFrame{Frame: &api.TunnelFrame_Stderr{Stderr: data}}
		}
		select {
		case w.sendc <- f:
		case <-w.ctx.Done():
			return written, w.ctx.Err()
		}
		written += n
		p = p[n:]
	}
	return written, nil
}
