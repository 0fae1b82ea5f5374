package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/internal/h2pings"
)

// heartbeatServer answers heartbeats and nothing else.
type heartbeatServer struct{ api.UnimplementedNodeServer }

func (heartbeatServer) Heartbeat(context.Context, *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	return &api.HeartbeatResponse{}, nil
}

// The server keeps fixed flow-control windows on node connections:
// gRPC's adaptive ones would ping the agent after nearly every sparse
// request.
func TestNodeServerKeepsItsWindows(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []grpc.ServerOption
		wantPings bool
	}{
		{"gRPC's adaptive windows", nil, true},
		{"the server's options", grpcServerOptions(insecure.NewCredentials()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := h2pings.Listen()
			if err != nil {
				t.Fatal(err)
			}
			gs := grpc.NewServer(tc.opts...)
			api.RegisterNodeServer(gs, heartbeatServer{})
			go gs.Serve(ln)
			defer gs.Stop()
			conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithStaticStreamWindowSize(api.StreamWindow), grpc.WithStaticConnWindowSize(api.ConnWindow))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := api.NewNodeClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for range 8 {
				if _, err := client.Heartbeat(ctx, &api.HeartbeatRequest{Ready: true}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			_, pings, err := ln.Pings()
			if err != nil {
				t.Fatal(err)
			}
			if (pings > 0) != tc.wantPings {
				t.Errorf("the server sent %d PINGs for 8 sparse calls; want some: %v", pings, tc.wantPings)
			}
		})
	}
}
