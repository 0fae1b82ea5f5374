package nodeclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

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

// ConnOptions returns the dial options of every node connection: creds,
// fixed flow-control windows (see api.StreamWindow), then extra.
func ConnOptions(creds credentials.TransportCredentials, extra ...grpc.DialOption) []grpc.DialOption {
	return append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStaticStreamWindowSize(api.StreamWindow),
		grpc.WithStaticConnWindowSize(api.ConnWindow),
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
