package server

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// The API's HTTP server closes a keep-alive connection that stays idle,
// and one that never finishes its headers, after their deadlines (short
// here).
func TestAPIServerDeadlines(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := newAPIServer(h, 100*time.Millisecond, 100*time.Millisecond, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for _, tc := range []struct{ name, send string }{
		{"idle after a request", "GET / HTTP/1.1\r\nHost: minik\r\n\r\n"},
		{"headers never finished", "GET / HTTP/1.1\r\nHost: mi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(portTestTimeout))
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			for {
				// Read past a response, if any, to the end of the stream.
				if _, err = br.ReadByte(); err != nil {
					break
				}
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the connection was still open after %v", portTestTimeout)
			}
		})
	}
}
