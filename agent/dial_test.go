package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/server/pki"
)

// Both ways an agent dials a server offer api.NodeProtocol, so that a
// server that knows the protocol serves the connection with gRPC's own
// transport.
func TestDialOffersTheNodeProtocol(t *testing.T) {
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ca.ServerTLSConfig()
	cfg.NextProtos = []string{api.NodeProtocol, "h2"}
	protos := make(chan string, 4)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			p, _ := peer.FromContext(ctx)
			ti, _ := p.AuthInfo.(credentials.TLSInfo)
			protos <- ti.State.NegotiatedProtocol
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	defer gs.Stop()
	url := "https://" + ln.Addr().String()
	roots := x509.NewCertPool()
	roots.AddCert(ca.CACert())
	list, err := newServerList(url, filepath.Join(t.TempDir(), ServersFile), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dial func(*x509.CertPool, *tls.Certificate) (*grpc.ClientConn, error)
	}{
		{"Dial", func(r *x509.CertPool, c *tls.Certificate) (*grpc.ClientConn, error) {
			return nodeclient.Dial(url, r, c)
		}},
		{"server list", func(r *x509.CertPool, _ *tls.Certificate) (*grpc.ClientConn, error) {
			return list.dial(r, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.dial(roots, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := healthpb.NewHealthClient(conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatalf("Check() = %v", err)
			}
			select {
			case got := <-protos:
				if got != api.NodeProtocol {
					t.Errorf("negotiated protocol %q, want %q", got, api.NodeProtocol)
				}
			default:
				t.Fatal("the call was not recorded")
			}
		})
	}
}
