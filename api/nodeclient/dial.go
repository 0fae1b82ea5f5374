package nodeclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/minik-dev/minik/api"
)

// Dial returns a connection to the gRPC endpoint of the server at
// serverURL (its HTTPS port, "https://HOST:PORT") that verifies the server
// with roots and presents cert, if any.
func Dial(serverURL string, roots *x509.CertPool, cert *tls.Certificate) (*grpc.ClientConn, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://HOST:PORT", serverURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	tc := TLSConfig(roots, cert)
	tc.ServerName = host
	return grpc.NewClient("passthrough:///"+net.JoinHostPort(host, port), ConnOptions(credentials.NewTLS(tc))...)
}

// Keepalive of node connections: a connection that has read nothing for
// KeepaliveTime is pinged, and closed if the ping is not answered within
// KeepaliveTimeout; the next call then dials again. A node's heartbeats
// are answered more often than that, so a live connection is not pinged.
// Without it a connection whose peer went silent (a half-open TCP
// connection, a wedged transport) stays in use: every call on it times
// out, and the node never reaches the server again. Together they are
// well below the server's default grace period (40 s).
const (
	KeepaliveTime    = 15 * time.Second
	KeepaliveTimeout = 5 * time.Second
)

// ConnOptions returns the dial options of every node connection: creds,
// fixed flow-control windows (see api.StreamWindow), keepalive, then
// extra.
func ConnOptions(creds credentials.TransportCredentials, extra ...grpc.DialOption) []grpc.DialOption {
	return append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStaticStreamWindowSize(api.StreamWindow),
		grpc.WithStaticConnWindowSize(api.ConnWindow),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true,
		}),
	}, extra...)
}

// TLSConfig returns the TLS configuration of a connection to a
// server's gRPC endpoint: servers verified with roots, cert presented if
// not nil, and api.NodeProtocol offered so that a server that knows the
// protocol serves the connection with gRPC's own transport
// (credentials.NewTLS adds "h2" after it, which older servers select).
func TLSConfig(roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{api.NodeProtocol}}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return tc
}
