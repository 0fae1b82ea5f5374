package pods

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
)

// followPoll is how often a followed log is read again at its end, and
// followCheck how often the container is checked for having exited.
var (
	followPoll  = 100 * time.Millisecond
	followCheck = time.Second
)

// Logs writes a container's log to w; see Streamer.
func (m *Manager) Logs(ctx context.Context, pod types.NamespacedName, container string, opts *corev1.PodLogOptions, w io.Writer) error {
	if opts == nil {
		opts = &corev1.PodLogOptions{}
	}
	p, name, err := m.container(pod, container)
	if err != nil {
		return err
	}
	rc, err := m.latest(ctx, string(p.UID), name)
	if err != nil {
		return fmt.Errorf("container %q in pod %q has not started: %w", name, pod, ErrNotFound)
	}
	path, attempt := m.logPath(rc.LogPath), rc.Attempt
	follow := opts.Follow
	if opts.Previous {
		if rc.Attempt == 0 {
			return fmt.Errorf("previous terminated container %q in pod %q: %w", name, pod, ErrNotFound)
		}
		path = filepath.Join(filepath.Dir(path), strconv.Itoa(rc.Attempt-1)+".log")
		follow = false
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && opts.Previous {
		return fmt.Errorf("previous terminated container %q in pod %q: %w", name, pod, ErrNotFound)
	} else if err != nil {
		return err
	}
	defer f.Close()
	lw := newLogWriter(w, opts, m.cfg.Now())
	if opts.TailLines != nil {
		if err := seekTail(f, *opts.TailLines); err != nil {
			return err
		}
	}
	var running func() bool
	if follow {
		running = func() bool {
			cur, err := m.latest(ctx, string(p.UID), name)
			return err == nil && cur.Attempt == attempt && cur.State == runtime.ContainerRunning
		}
	}
	err = copyLog(ctx, f, lw, running)
	if errors.Is(err, errLimit) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// latest returns the status of a container's latest attempt.
func (m *Manager) latest(ctx context.Context, uid, name string) (*runtime.ContainerStatus, error) {
	rs, err := m.cfg.Runtime.PodStatus(ctx, uid)
	if err != nil {
		return nil, err
	}
	if rc := rs.Container(name); rc != nil {
		return rc, nil
	}
	return nil, ErrNotFound
}

func (m *Manager) logPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(m.cfg.DataDir, p)
}

// copyLog copies CRI log entries from r to lw. With running set it keeps
// reading at the end of the file until running reports false and the file
// is drained, or ctx ends.
func copyLog(ctx context.Context, r io.Reader, lw *logWriter, running func() bool) error {
	br := bufio.NewReaderSize(r, 64*1024)
	var pending []byte
	lastCheck := time.Now()
	alive := running != nil
	for {
		line, err := br.ReadBytes('\n')
		if err == nil {
			line = append(pending, line...)
			pending = pending[:0]
			if err := lw.entry(line[:len(line)-1]); err != nil {
				return err
			}
			continue
		}
		if err != io.EOF {
			return err
		}
		pending = append(pending, line...)
		if !alive {
			return nil
		}
		if time.Since(lastCheck) >= followCheck {
			// One more pass after the container stops drains the log.
			alive, lastCheck = running(), time.Now()
			if !alive {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
	}
}

// seekTail positions f at the start of the last n log lines; a line
// spans partial entries up to a full one.
func seekTail(f *os.File, n int64) error {
	if n <= 0 {
		_, err := f.Seek(0, io.SeekEnd)
		return err
	}
	ring := make([]int64, n)
	var count, off int64
	atStart := true
	br := bufio.NewReaderSize(f, 64*1024)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			break // an unterminated last entry is left for the copy
		}
		if atStart {
			ring[count%n] = off
			count++
		}
		_, _, full, _, ok := parseEntry(line[:len(line)-1])
		atStart = !ok || full
		off += int64(len(line))
	}
	start := int64(0)
	if count > n {
		start = ring[count%n]
	}
	_, err := f.Seek(start, io.SeekStart)
	return err
}

// parseEntry splits "<time> <stream> <F|P> <text>".
func parseEntry(line []byte) (ts, stream []byte, full bool, text []byte, ok bool) {
	ts, rest, ok1 := bytes.Cut(line, []byte{' '})
	stream, rest, ok2 := bytes.Cut(rest, []byte{' '})
	tag, text, ok3 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 {
		return nil, nil, true, nil, false
	}
	if !ok3 { // an empty line may lack the separator
		tag, text = rest, nil
	}
	return ts, stream, !bytes.Equal(tag, []byte("P")), text, true
}

// timeFormat is how Kubernetes prints log timestamps: RFC 3339 with all
// nine fractional digits.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// errLimit ends a copy at limitBytes.
var errLimit = errors.New("pods: log limit reached")

// logWriter turns CRI entries into plain output as the options say.
type logWriter struct {
	w          io.Writer
	timestamps bool
	since      time.Time
	left       int64 // bytes left; <0 means no limit
	atStart    bool  // the next entry starts a line
}

func newLogWriter(w io.Writer, opts *corev1.PodLogOptions, now time.Time) *logWriter {
	lw := &logWriter{w: w, timestamps: opts.Timestamps, left: -1, atStart: true}
	if opts.LimitBytes != nil {
		lw.left = *opts.LimitBytes
	}
	switch {
	case opts.SinceTime != nil:
		lw.since = opts.SinceTime.Time
	case opts.SinceSeconds != nil:
		lw.since = now.Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	}
	return lw
}

// entry writes one CRI entry.
func (lw *logWriter) entry(line []byte) error {
	ts, _, full, text, ok := parseEntry(line)
	if !ok {
		return nil
	}
	if !lw.since.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		if err == nil && t.Before(lw.since) {
			lw.atStart = full
			return nil
		}
	}
	var out []byte
	if lw.timestamps && lw.atStart {
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			out = t.UTC().AppendFormat(out, timeFormat)
		} else {
			out = append(out, ts...)
		}
		out = append(out, ' ')
	}
	out = append(out, text...)
	if full {
		out = append(out, '\n')
	}
	lw.atStart = full
	return lw.write(out)
}

func (lw *logWriter) write(p []byte) error {
	if lw.left == 0 {
		return errLimit
	}
	if lw.left > 0 && int64(len(p)) > lw.left {
		p = p[:lw.left]
	}
	n, err := lw.w.Write(p)
	if lw.left > 0 {
		lw.left -= int64(n)
		if err == nil && lw.left == 0 {
			return errLimit
		}
	}
	return err
}
