package nodeclient

import (
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/h2pings"
)

// An agent's connection keeps fixed flow-control windows: gRPC's
// adaptive ones would ping the server after nearly every response to a
// sparse status batch.
func TestNodeConnectionsKeepTheirWindows(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []grpc.DialOption
		wantPings bool
	}{
		{"gRPC's adaptive windows", []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, true},
		{"the node options", ConnOptions(insecure.NewCredentials()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := h2pings.Listen()
			if err != nil {
				t.Fatal(err)
			}
			gs := grpc.NewServer(grpc.StaticStreamWindowSize(api.StreamWindow), grpc.StaticConnWindowSize(api.ConnWindow))
			api.RegisterNodeServer(gs, &reportServer{})
			go gs.Serve(ln)
			defer gs.Stop()
			conn, err := grpc.NewClient(ln.Addr().String(), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx := senderCtx(t)
			s := NewStatusSender(ctx, api.NewNodeClient(conn))
			defer s.Close()
			for range 8 {
				sendOK(t, s, ctx, 1)
				time.Sleep(20 * time.Millisecond)
			}
			pings, _, err := ln.Pings()
			if err != nil {
				t.Fatal(err)
			}
			if (pings > 0) != tc.wantPings {
				t.Errorf("the client sent %d PINGs for 8 sparse batches; want some: %v", pings, tc.wantPings)
			}
		})
	}
}
