package inprocess

import (
	"context"
	"sync"
	"sync/atomic"
)

// responseBody is the body of a loopback response: the bytes the handler
// has handed over and the client has not read yet, then the end.
type responseBody struct {
	ctx    context.Context    // the client's request context
	cancel context.CancelFunc // ends the handler's context
	closed atomic.Bool        // the client closed the body

	// readable and drained (capacity 1) signal a push or the end to the
	// reader and an emptied buffer to the writer; nil when the body was
	// complete when returned.
	readable chan struct{}
	drained  chan struct{}

	mu   sync.Mutex
	buf  []byte // guarded by mu; unread from off
	off  int    // guarded by mu
	done bool   // guarded by mu; the handler has returned
	err  error  // guarded by mu; what Read returns at the end
}

// Read reads what the handler has handed over, waiting for more while the
// handler runs. It ends with io.EOF, or io.ErrUnexpectedEOF if the handler
// panicked, or for a stream the request context's error if that ended
// first.
func (b *responseBody) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if b.closed.Load() {
			b.mu.Unlock()
			return 0, ErrBodyClosed
		}
		if b.off < len(b.buf) {
			n := copy(p, b.buf[b.off:])
			b.off += n
			if b.off == len(b.buf) && b.drained != nil {
				b.buf, b.off = b.buf[:0], 0
				signal(b.drained)
			}
			b.mu.Unlock()
			return n, nil
		}
		// A stream the client gave up ends with its context's error; a
		// body complete when returned is read whole regardless.
		if b.readable != nil && b.ctx.Err() != nil {
			b.mu.Unlock()
			return 0, b.ctx.Err()
		}
		if b.done {
			b.mu.Unlock()
			return 0, b.err
		}
		b.mu.Unlock()
		select {
		case <-b.readable:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
}

// Close ends the handler if it is still running (a watch the client
// stops) and releases the body.
func (b *responseBody) Close() error {
	b.mu.Lock()
	b.closed.Store(true)
	if b.done {
		putBuffer(b.buf)
	}
	b.buf, b.off = nil, 0
	b.mu.Unlock()
	b.cancel()
	return nil
}

// push appends p to the unread bytes and returns an empty buffer for the
// handler's next writes. It waits while more than maxUnreadStream bytes
// are unread, until ctx (the handler's) ends.
func (b *responseBody) push(ctx context.Context, p []byte) ([]byte, error) {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return p[:0], ErrBodyClosed
	}
	spare := p[:0]
	if b.off == len(b.buf) {
		// The reader has caught up: take p whole and give back the
		// buffer it emptied.
		spare, b.buf, b.off = b.buf[:0], p, 0
	} else {
		b.buf = append(b.buf, p...)
	}
	full := len(b.buf)-b.off > maxUnreadStream
	b.mu.Unlock()
	signal(b.readable)
	for full {
		select {
		case <-b.drained:
		case <-ctx.Done():
			return spare, ctx.Err()
		}
		b.mu.Lock()
		full = !b.closed.Load() && len(b.buf)-b.off > maxUnreadStream
		b.mu.Unlock()
	}
	return spare, nil
}

// end marks the end of the stream; Read returns err once the rest is read.
func (b *responseBody) end(err error) {
	b.mu.Lock()
	b.done, b.err = true, err
	b.mu.Unlock()
	signal(b.readable)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// bufferPool recycles response buffers: most responses are one object of
// a few KiB, read once by the client and closed.
var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Buffers larger than this are left to the garbage collector (lists).
const maxPooledBuffer = 64 << 10

func getBuffer() []byte { return (*bufferPool.Get().(*[]byte))[:0] }

func putBuffer(b []byte) {
	if b == nil || cap(b) > maxPooledBuffer {
		return
	}
	bufferPool.Put(&b)
}
