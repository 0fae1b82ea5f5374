// Package crilog writes container output in the CRI log format:
//
//	<RFC3339Nano time> <stdout|stderr> <F|P> <text>
//
// one entry per line of output; a line longer than MaxLine is split into
// partial (P) entries ending with a full (F) one.
package crilog

import (
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

// MaxLine is the longest text one entry carries.
const MaxLine = 16 * 1024

// File is a log file shared by a container's streams.
type File struct {
	mu  sync.Mutex // guards f and buf
	f   *os.File
	buf []byte
	now func() time.Time
}

// Open opens path for appending, creating it.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &File{f: f, now: time.Now}, nil
}

// Close closes the file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

func (l *File) write(stream string, partial bool, text []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tag := " F "
	if partial {
		tag = " P "
	}
	b := l.buf[:0]
	b = l.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, tag...)
	b = append(b, text...)
	b = append(b, '\n')
	l.buf = b
	_, err := l.f.Write(b)
	return err
}

// Stream returns a writer for one stream ("stdout" or "stderr"). The writer
// is not safe for concurrent use; Close flushes an unterminated last line
// as a partial entry, so that readers give it back without a newline the
// output never had.
func (l *File) Stream(name string) io.WriteCloser {
	return &stream{file: l, name: name}
}

type stream struct {
	file    *File
	name    string
	pending []byte
}

func (s *stream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.pending = append(s.pending, p...)
			break
		}
		line := p[:i]
		if len(s.pending) > 0 {
			line = append(s.pending, line...)
			s.pending = s.pending[:0]
		}
		if err := s.emit(line); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	for len(s.pending) >= MaxLine {
		if err := s.file.write(s.name, true, s.pending[:MaxLine]); err != nil {
			return 0, err
		}
		s.pending = append(s.pending[:0], s.pending[MaxLine:]...)
	}
	return n, nil
}

// emit writes a complete line, split into partial entries when long.
func (s *stream) emit(line []byte) error {
	for len(line) > MaxLine {
		if err := s.file.write(s.name, true, line[:MaxLine]); err != nil {
			return err
		}
		line = line[MaxLine:]
	}
	return s.file.write(s.name, false, line)
}

func (s *stream) Close() error {
	if len(s.pending) == 0 {
		return nil
	}
	err := s.file.write(s.name, true, s.pending)
	s.pending = nil
	return err
}
