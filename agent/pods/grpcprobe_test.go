package pods

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
)

// grpcHealthServer serves grpc.health.v1 on a loopback port and returns
// the port and the service's status setter.
func grpcHealthServer(t *testing.T) (int32, *health.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return int32(l.Addr().(*net.TCPAddr).Port), hs
}

func TestGRPCProbe(t *testing.T) {
	port, hs := grpcHealthServer(t)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := int32(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()
	svc := func(s string) *string { return &s }
	tests := []struct {
		name   string
		action corev1.GRPCAction
		pass   bool
	}{
		{"server serving", corev1.GRPCAction{Port: port}, true},
		{"named service not serving", corev1.GRPCAction{Port: port, Service: svc("db")}, false},
		{"unknown service", corev1.GRPCAction{Port: port, Service: svc("nosuch")}, false},
		{"nothing listening", corev1.GRPCAction{Port: closedPort}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := grpcProbe(ctx, &tc.action, "127.0.0.1")
			if (err == nil) != tc.pass {
				t.Errorf("grpcProbe = %v, want pass %v", err, tc.pass)
			}
		})
	}
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_SERVING)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := grpcProbe(ctx, &corev1.GRPCAction{Port: port, Service: svc("db")}, "127.0.0.1"); err != nil {
		t.Errorf("grpcProbe of a service now serving = %v, want nil", err)
	}
}
