package pods

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
)

// grpcProbe asks the gRPC health service (grpc.health.v1.Health/Check) at
// the pod IP and g's port about g's service ("" for the server as a
// whole); only SERVING passes. As the kubelet's, the connection is
// plaintext unless g's mode is TLS, whose certificate is not verified.
func grpcProbe(ctx context.Context, g *corev1.GRPCAction, podIP string) error {
	creds := insecure.NewCredentials()
	if g.Mode != nil && *g.Mode == corev1.GRPCProbeModeTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	addr := net.JoinHostPort(podIP, strconv.Itoa(int(g.Port)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &healthpb.HealthCheckRequest{}
	if g.Service != nil {
		req.Service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, req)
	if err != nil {
		return fmt.Errorf("gRPC health check of %s: %w", addr, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health check of %s: service %q is %s", addr, req.Service, s)
	}
	return nil
}
