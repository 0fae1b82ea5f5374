package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Attacher connects to the main process of running containers, as
// `kubectl attach` does.
type Attacher interface {
	// Attach copies the output the latest attempt of the container writes
	// from now on to opts.Stdout and opts.Stderr, and opts.Stdin to its
	// standard input when the container was created with Stdin. It returns
	// when ctx ends or the process exits (nil), or when the caller fell
	// behind the output by more than attachBacklog writes
	// (ErrAttachOverrun). ErrNotFound for a container that does not run;
	// ErrInvalid for stdin to a container without it.
	Attach(ctx context.Context, podUID, container string, opts AttachOptions) error
}

// AttachOptions are the streams of an attach session. Nil streams are not
// connected.
type AttachOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // unused when the container has a terminal
	// Resize, when not nil, delivers terminal sizes (containers with TTY).
	Resize <-chan TermSize
}

// ErrAttachOverrun means an attach session read the container's output
// too slowly: the container is never slowed down for it.
var ErrAttachOverrun = errors.New("runtime: attach session fell behind the container's output")

// attachBacklog is how many writes of output an attach session may lag.
const attachBacklog = 256

// attachHub fans a task's output out to attach sessions and holds the
// writing end of its stdin (for containers created with Stdin).
type attachHub struct {
	stdinOnce bool
	// closeIO, set once the task exists, tells the task's shim that stdin
	// ended: closing our end of the FIFO alone does not reach the process.
	closeIO func()

	mu       sync.Mutex
	sessions map[*attachSession]struct{} // guarded by mu
	stdin    *io.PipeWriter              // guarded by mu; nil without stdin or once closed
	done     chan struct{}               // closed by close
	closed   bool                        // guarded by mu
}

// attachSession is one Attach call's queue of output.
type attachSession struct {
	out     chan attachChunk
	overrun chan struct{} // closed when out overflowed
}

type attachChunk struct {
	stderr bool
	data   []byte
}

// newAttachHub returns a hub; with stdin, it returns the reading end the
// task's stdin copies from.
func newAttachHub(stdin, stdinOnce bool) (*attachHub, io.Reader) {
	h := &attachHub{stdinOnce: stdinOnce, sessions: map[*attachSession]struct{}{}, done: make(chan struct{})}
	if !stdin {
		return h, nil
	}
	r, w := io.Pipe()
	h.stdin = w
	return h, r
}

// writer returns next teed into the hub: each write goes to next (the
// container log) and then to every session, without waiting for any.
func (h *attachHub) writer(next io.WriteCloser, stderr bool) io.WriteCloser {
	return &hubWriter{next: next, hub: h, stderr: stderr}
}

type hubWriter struct {
	next   io.WriteCloser
	hub    *attachHub
	stderr bool
}

func (w *hubWriter) Write(p []byte) (int, error) {
	n, err := w.next.Write(p)
	w.hub.broadcast(attachChunk{stderr: w.stderr, data: append([]byte(nil), p...)})
	return n, err
}

func (w *hubWriter) Close() error { return w.next.Close() }

func (h *attachHub) broadcast(c attachChunk) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.sessions {
		select {
		case s.out <- c:
		default:
			delete(h.sessions, s)
			close(s.overrun)
		}
	}
}

// close ends every session and the task's stdin: the task exited.
func (h *attachHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
	}
	close(h.done)
}

// attach runs one session; resize (may be nil) is called with sizes.
func (h *attachHub) attach(ctx context.Context, opts AttachOptions, resize func(TermSize)) error {
	s := &attachSession{out: make(chan attachChunk, attachBacklog), overrun: make(chan struct{})}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return fmt.Errorf("container exited: %w", ErrNotFound)
	}
	if opts.Stdin != nil && h.stdin == nil {
		h.mu.Unlock()
		return fmt.Errorf("the container's stdin is not open (stdin is false, or stdinOnce and used): %w", ErrInvalid)
	}
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	defer h.leave(s)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Stdin != nil {
		go h.copyStdin(ctx, opts.Stdin)
	}
	if opts.Resize != nil && resize != nil {
		go forwardResize(ctx, opts.Resize, resize)
	}
	for {
		select {
		case c := <-s.out:
			if err := c.writeTo(opts); err != nil {
				return err
			}
		case <-s.overrun:
			return ErrAttachOverrun
		case <-h.done:
			return s.drain(opts)
		case <-ctx.Done():
			return nil
		}
	}
}

// writeTo writes c to its stream of opts, if connected.
func (c attachChunk) writeTo(opts AttachOptions) error {
	w := opts.Stdout
	if c.stderr {
		w = opts.Stderr
	}
	if w == nil {
		return nil
	}
	_, err := w.Write(c.data)
	return err
}

// drain writes the output queued before the task exited.
func (s *attachSession) drain(opts AttachOptions) error {
	for {
		select {
		case c := <-s.out:
			if err := c.writeTo(opts); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (h *attachHub) leave(s *attachSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, s)
}

// copyStdin sends a session's stdin to the task. With StdinOnce, the end
// of the first session's stdin closes the task's stdin for good.
func (h *attachHub) copyStdin(ctx context.Context, r io.Reader) {
	h.mu.Lock()
	w := h.stdin
	h.mu.Unlock()
	if w == nil {
		return
	}
	buf := make([]byte, 32<<10)
	for ctx.Err() == nil {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	if h.stdinOnce {
		h.mu.Lock()
		w := h.stdin
		h.stdin = nil
		h.mu.Unlock()
		if w != nil {
			w.Close()
			if h.closeIO != nil {
				h.closeIO()
			}
		}
	}
}

// forwardResize calls resize with each size until sizes closes or ctx ends.
func forwardResize(ctx context.Context, sizes <-chan TermSize, resize func(TermSize)) {
	for {
		select {
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			resize(sz)
		case <-ctx.Done():
			return
		}
	}
}

// Attach connects to the main process of the latest attempt of a
// container; see Attacher.
func (c *Containerd) Attach(ctx context.Context, podUID, container string, opts AttachOptions) error {
	ctx = c.ctx(ctx)
	task, _, err := c.runningTask(ctx, podUID, container)
	if err != nil {
		return err
	}
	c.mu.Lock()
	w := c.tasks[task.ID()]
	c.mu.Unlock()
	if w == nil {
		return fmt.Errorf("container %q of pod %q is not followed: %w", container, podUID, ErrNotFound)
	}
	resize := func(sz TermSize) {
		if err := task.Resize(ctx, uint32(sz.Width), uint32(sz.Height)); err != nil {
			c.lg.Debug("resize attached terminal", "err", err)
		}
	}
	return w.hub.attach(ctx, opts, resize)
}
