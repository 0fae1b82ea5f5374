package streaming_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/test/bufconn"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/streaming"
)

// issue returns a certificate for subject signed by ca (self-signed CA when nil).
func issue(t *testing.T, subject pkix.Name, ca *tls.Certificate, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{"server"}, IsCA: ca == nil, BasicConstraintsValid: true,
	}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.Leaf, ca.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestPeerNodeNameTLS connects over mutual TLS with a node certificate
// and checks the server takes the node name from it.
func TestPeerNodeNameTLS(t *testing.T) {
	ca := issue(t, pkix.Name{CommonName: "ca"}, nil, x509.ExtKeyUsageAny)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	serving := issue(t, pkix.Name{CommonName: "server"}, &ca, x509.ExtKeyUsageServerAuth)
	node := issue(t, pkix.Name{CommonName: "system:node:n7", Organization: []string{"system:nodes"}}, &ca, x509.ExtKeyUsageClientAuth)

	srv := streaming.NewServer(nil, nil)
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serving}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven,
	})))
	srv.Register(g)
	lis := bufconn.Listen(1 << 16)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient("passthrough:///server",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{node}, RootCAs: pool, ServerName: "server",
		})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := api.NewTunnelClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&api.TunnelHello{NodeName: "n7"}); err != nil {
		t.Fatal(err)
	}
	for !srv.Connected("n7") {
		if ctx.Err() != nil {
			t.Fatal("node n7 did not connect with its certificate")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
