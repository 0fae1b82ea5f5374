package streaming

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/minik-dev/minik/api"
)

// termSize is a terminal size from the client.
type termSize struct {
	width, height uint16
}

// clientInput is what a client sends into a session. Either may be nil.
type clientInput struct {
	stdin  io.Reader
	resize <-chan termSize // closed when the client stops sending sizes
}

// stdinChunk is the most stdin one frame carries.
const stdinChunk = 32 << 10

type recvResult struct {
	res *api.TunnelResult
	err error
}

// errNoResult means the agent ended a data stream without a result.
var errNoResult = errors.New("streaming: data stream ended without a result")

// relay runs a session until the agent's result arrives, ctx ends or the
// stream fails: it writes the agent's output to stdout and stderr (nil →
// discarded) and sends the client's input to the agent. Memory stays
// bounded: every hop blocks until the next one takes the data, and gRPC's
// flow control pushes back on the agent. When relay returns without a
// result, it calls abort (if set), which must unblock writes to stdout and
// stderr, and then waits for the writer. It closes sess.
func (sess *session) relay(ctx context.Context, in clientInput, stdout, stderr io.Writer, abort func()) (*api.TunnelResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer sess.close()

	sendc := make(chan *api.TunnelFrame)
	if in.stdin != nil {
		go copyStdin(ctx, in.stdin, sendc)
	}
	if in.resize != nil {
		go forwardResizes(ctx, in.resize, sendc)
	}
	resc := make(chan recvResult, 1)
	go func() {
		res, err := recvOutput(sess.stream, stdout, stderr)
		resc <- recvResult{res, err}
	}()
	stop := func() {
		cancel()
		sess.close() // ends the Stream call, so Recv returns
		if abort != nil {
			abort()
		}
		<-resc
	}
	for {
		select {
		case f := <-sendc:
			if err := sess.stream.Send(f); err != nil {
				stop()
				return nil, err
			}
		case r := <-resc:
			return r.res, r.err
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
	}
}

// recvOutput copies output frames to stdout and stderr until the result.
func recvOutput(stream api.Tunnel_StreamServer, stdout, stderr io.Writer) (*api.TunnelResult, error) {
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errNoResult
		}
		if err != nil {
			return nil, err
		}
		switch fr := f.Frame.(type) {
		case *api.TunnelFrame_Stdout:
			if stdout != nil {
				if _, err := stdout.Write(fr.Stdout); err != nil {
					return nil, err
				}
			}
		case *api.TunnelFrame_Stderr:
			if stderr != nil {
				if _, err := stderr.Write(fr.Stderr); err != nil {
					return nil, err
				}
			}
		case *api.TunnelFrame_Result:
			return fr.Result, nil
		}
	}
}

// copyStdin sends r to the agent in frames, then an end-of-input frame.
func copyStdin(ctx context.Context, r io.Reader, sendc chan<- *api.TunnelFrame) {
	buf := make([]byte, stdinChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			f := &api.TunnelFrame{Frame: &api.TunnelFrame_Stdin{Stdin: bytes.Clone(buf[:n])}}
			select {
			case sendc <- f:
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			break
		}
	}
	select {
	case sendc <- &api.TunnelFrame{Frame: &api.TunnelFrame_StdinEof{StdinEof: true}}:
	case <-ctx.Done():
	}
}

// forwardResizes sends terminal sizes to the agent.
func forwardResizes(ctx context.Context, sizes <-chan termSize, sendc chan<- *api.TunnelFrame) {
	for {
		select {
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			f := &api.TunnelFrame{Frame: &api.TunnelFrame_Resize{Resize: &api.TunnelTerminalSize{
				Width: uint32(sz.width), Height: uint32(sz.height),
			}}}
			select {
			case sendc <- f:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
