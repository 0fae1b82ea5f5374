package streaming

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// spdyTunnelProtocol is the WebSocket subprotocol under which kubectl
// tunnels an SPDY/3.1 port forwarding connection: every binary message
// carries the next bytes of the SPDY connection.
const spdyTunnelProtocol = "SPDY/3.1+" + portForwardProtocol

// errNotBinary means a tunneled SPDY connection got a text message.
var errNotBinary = errors.New("streaming: tunneled SPDY needs binary messages")

// offersSPDYTunnel reports whether a WebSocket request offers the SPDY
// port forwarding tunnel.
func offersSPDYTunnel(r *http.Request) bool {
	return slices.Contains(websocket.Subprotocols(r), spdyTunnelProtocol)
}

// upgradeSPDYTunnel upgrades r to a WebSocket and runs an SPDY server
// connection inside it. On error the client has been answered.
func upgradeSPDYTunnel(w http.ResponseWriter, r *http.Request, onStream httpstream.NewStreamHandler) (httpstream.Connection, error) {
	up := websocket.Upgrader{
		Subprotocols: []string{spdyTunnelProtocol},
		// The request is authenticated by its credentials, not cookies.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil, err
	}
	conn, err := spdy.NewServerConnection(&wsConn{ws: ws}, onStream)
	if err != nil {
		ws.Close()
		return nil, err
	}
	return conn, nil
}

// wsConn is a WebSocket as a byte stream (net.Conn) of binary messages.
// One goroutine reads; writes are serialized.
type wsConn struct {
	ws *websocket.Conn
	r  io.Reader // the message being read; reader only

	wmu sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errNotBinary
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a normal close message, then closes the connection.
func (c *wsConn) Close() error {
	c.wmu.Lock()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.ws.SetWriteDeadline(t))
}
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
