// Package h2pings counts the HTTP/2 PING frames that cross a plaintext
// connection, for tests of flow-control settings: gRPC's adaptive windows
// show up as PINGs sent along with data.
package h2pings

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"

	"golang.org/x/net/http2"
)

// Listener records, for every connection it accepts, the bytes read from
// the peer and the bytes written to it.
type Listener struct {
	net.Listener
	mu    sync.Mutex
	conns []*conn
}

// Listen listens on a loopback TCP port.
func Listen() (*Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &Listener{Listener: ln}, nil
}

type conn struct {
	net.Conn
	mu      sync.Mutex
	in, out bytes.Buffer
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.out.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// Accept accepts a connection and starts recording it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &conn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, rc)
	l.mu.Unlock()
	return rc, nil
}

// Pings returns how many PING frames that are not acknowledgements the
// clients sent and the server sent, over all connections so far.
func (l *Listener) Pings() (fromClients, fromServer int, err error) {
	l.mu.Lock()
	conns := append([]*conn(nil), l.conns...)
	l.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		in := bytes.Clone(bytes.TrimPrefix(c.in.Bytes(), []byte(http2.ClientPreface)))
		out := bytes.Clone(c.out.Bytes())
		c.mu.Unlock()
		n, err := pings(in)
		if err != nil {
			return 0, 0, err
		}
		m, err := pings(out)
		if err != nil {
			return 0, 0, err
		}
		fromClients, fromServer = fromClients+n, fromServer+m
	}
	return fromClients, fromServer, nil
}

// pings counts the PING frames in data, a sequence of HTTP/2 frames whose
// last one may be cut short.
func pings(data []byte) (int, error) {
	fr := http2.NewFramer(nil, bytes.NewReader(data))
	fr.SetMaxReadFrameSize(1 << 24)
	n := 0
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
			n++
		}
	}
}
