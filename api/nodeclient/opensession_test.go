package nodeclient

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/minik-dev/minik/api"
)

// OpenSession gives up after its timeout on a server that accepts the
// connection and then says nothing, where opening would wait for gRPC's
// connection attempt (20 s).
func TestOpenSessionGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held silent until the test ends
		}
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), ConnOptions(insecure.NewCredentials())...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := OpenSession(ctx, api.NewNodeClient(conn), &api.SessionRequest{}, 100*time.Millisecond)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("OpenSession() = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("OpenSession() still waiting after 8s with a timeout of 100ms")
	}
}
