package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Exec runs a process in a running container; see Execer.
func (c *Containerd) Exec(ctx context.Context, podUID, container string, opts ExecOptions) (int, error) {
	if len(opts.Cmd) == 0 {
		return 0, fmt.Errorf("exec: command must be set: %w", ErrInvalid)
	}
	ctx = c.ctx(ctx)
	task, pspec, err := c.runningTask(ctx, podUID, container)
	if err != nil {
		return 0, err
	}
	pspec.Args = opts.Cmd
	pspec.Terminal = opts.TTY
	if opts.TTY {
		pspec.Env = append(pspec.Env, "TERM=xterm")
	}
	stdin := newEOFReader(opts.Stdin)
	var in io.Reader
	if opts.Stdin != nil {
		in = stdin
	}
	streams := []cio.Opt{cio.WithStreams(in, orDiscard(opts.Stdout), orDiscard(opts.Stderr)), cio.WithFIFODir(c.fifoDir())}
	if opts.TTY {
		streams = append(streams, cio.WithTerminal)
	}
	proc, err := task.Exec(ctx, "exec-"+randomID(), pspec, cio.NewCreator(streams...))
	if err != nil {
		return 0, fmt.Errorf("exec in %q: %w", container, err)
	}
	defer proc.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	statusC, err := proc.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec in %q: %w", container, err)
	}
	ioCtx, stopIO := context.WithCancel(ctx)
	defer stopIO()
	go c.execIO(ioCtx, proc, stdin.eof, opts.Resize)
	st := <-statusC
	code, _, err := st.Result()
	if err != nil {
		return 0, err
	}
	closeIO(proc.IO())
	return int(code), nil
}

// execIO closes the process' stdin at EOF and forwards terminal sizes.
func (c *Containerd) execIO(ctx context.Context, proc client.Process, eof <-chan struct{}, resize <-chan TermSize) {
	for eof != nil || resize != nil {
		select {
		case <-ctx.Done():
			return
		case <-eof:
			if err := proc.CloseIO(ctx, client.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				c.lg.Debug("close exec stdin", "err", err)
			}
			eof = nil
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			if err := proc.Resize(ctx, uint32(sz.Width), uint32(sz.Height)); err != nil {
				c.lg.Debug("resize exec terminal", "err", err)
			}
		}
	}
}

// runningTask returns the task of the container's latest attempt and a copy
// of its process spec, or ErrNotFound if it does not run.
func (c *Containerd) runningTask(ctx context.Context, uid, name string) (client.Task, *specs.Process, error) {
	attempts, err := c.attempts(ctx, uid, name)
	if err != nil {
		return nil, nil, err
	}
	if len(attempts) == 0 {
		return nil, nil, fmt.Errorf("container %q of pod %q: %w", name, uid, ErrNotFound)
	}
	ctr := attempts[len(attempts)-1]
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("container %q of pod %q is not running: %w", name, uid, ErrNotFound)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, nil, err
	}
	p := *spec.Process
	p.Env = append([]string{}, p.Env...)
	return task, &p, nil
}

// eofReader reports when its reader is exhausted; with no reader there is
// no stdin and eof stays nil.
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func newEOFReader(r io.Reader) *eofReader {
	if r == nil {
		return &eofReader{}
	}
	return &eofReader{r: r, eof: make(chan struct{})}
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
