package agent

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/internal/atomicfile"
)

// ServersFile, under the data directory, keeps the API servers' addresses
// ("host:port", one a line) the agent last heard of, for fail-over and
// for joining again after a restart while its first server is down.
const ServersFile = "servers"

// serverDialTimeout bounds one connection attempt to one server before
// the next one is tried.
const serverDialTimeout = 3 * time.Second

// serverList is the servers an agent may connect to, the one it is
// connected to first. Its methods are safe for concurrent use.
type serverList struct {
	path string // where the list is kept; "" = not kept
	lg   *slog.Logger

	mu    sync.Mutex
	addrs []string // guarded by mu; addrs[0] is tried first
	seed  string   // guarded by mu; the --join server, always kept
}

// newServerList starts from serverURL's host:port followed by the
// addresses kept in path.
func newServerList(serverURL, path string, lg *slog.Logger) (*serverList, error) {
	seed, err := hostPort(serverURL)
	if err != nil {
		return nil, err
	}
	l := &serverList{path: path, lg: lg, seed: seed, addrs: []string{seed}}
	if data, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !slices.Contains(l.addrs, line) {
				l.addrs = append(l.addrs, line)
			}
		}
	}
	return l, nil
}

// hostPort returns the "host:port" of an https URL (port 443 by default).
func hostPort(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server URL %q: want https://HOST:PORT", serverURL)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// urls returns the servers as https URLs, in the order to try them.
func (l *serverList) urls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.addrs))
	for i, a := range l.addrs {
		out[i] = "https://" + a
	}
	return out
}

// isSeed reports whether serverURL, as urls returns it, is the --join
// server.
func (l *serverList) isSeed(serverURL string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return serverURL == "https://"+l.seed
}

// set replaces the list with addrs from the server, keeping the server
// in use first (while it is listed, or is the --join server) and the
// --join server in any case, and keeps it in l.path.
func (l *serverList) set(addrs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := make([]string, 0, len(addrs)+2)
	if cur := l.addrs[0]; cur == l.seed || slices.Contains(addrs, cur) {
		next = append(next, cur)
	}
	for _, a := range addrs {
		if a != "" && !slices.Contains(next, a) {
			next = append(next, a)
		}
	}
	if !slices.Contains(next, l.seed) {
		next = append(next, l.seed)
	}
	if slices.Equal(next, l.addrs) {
		return
	}
	l.addrs = next
	l.lg.Info("server list updated", "servers", addrs)
	if l.path != "" {
		sorted := slices.Sorted(slices.Values(addrs))
		if err := atomicfile.Write(l.path, []byte(strings.Join(sorted, "\n")+"\n"), 0o644); err != nil {
			l.lg.Warn("keeping the server list", "path", l.path, "err", err)
		}
	}
}

// dialAny connects to the first server that answers, starting with the
// one last used. The TLS handshake that follows decides whether it is
// the one in use (handshook).
func (l *serverList) dialAny(ctx context.Context, _ string) (net.Conn, error) {
	l.mu.Lock()
	addrs := slices.Clone(l.addrs)
	l.mu.Unlock()
	var errs []string
	for _, addr := range addrs {
		d := net.Dialer{Timeout: serverDialTimeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			errs = append(errs, err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		host, _, _ := net.SplitHostPort(addr)
		return &serverConn{Conn: conn, host: host, addr: addr, list: l}, nil
	}
	return nil, fmt.Errorf("no server answers: %s", strings.Join(errs, "; "))
}

// handshook moves addr to the front of the list once a TLS handshake with
// it succeeded, and to the back when one failed: an address that accepts
// connections but is not a server of the cluster (or not yet serving)
// must not be tried first again and again.
func (l *serverList) handshook(addr string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.Index(l.addrs, addr)
	switch {
	case i < 0:
	case err == nil && i > 0:
		l.addrs = slices.Insert(slices.Delete(l.addrs, i, i+1), 0, addr)
		l.lg.Info("connected to another server", "server", addr)
	case err != nil && i < len(l.addrs)-1:
		l.addrs = append(slices.Delete(l.addrs, i, i+1), addr)
		l.lg.Warn("TLS handshake with a server failed; trying the others first", "server", addr, "err", err)
	}
}

// dial returns a connection that verifies servers with roots, presents
// the certificate cert holds at each handshake (none if cert is nil), and
// reconnects to another server of the list when the one in use goes
// away.
func (l *serverList) dial(roots *x509.CertPool, cert *nodeCert) (*grpc.ClientConn, error) {
	tc := nodeclient.TLSConfig(roots, nil)
	if cert != nil {
		tc.GetClientCertificate = cert.getClientCertificate
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = 5 * time.Second
	l.mu.Lock()
	target := l.addrs[0]
	l.mu.Unlock()
	return grpc.NewClient("passthrough:///"+target, nodeclient.ConnOptions(perServerTLS{credentials.NewTLS(tc)},
		grpc.WithContextDialer(l.dialAny),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}))...)
}

// serverConn is a connection to one server of the list, which knows the
// address and host name it was dialed by.
type serverConn struct {
	net.Conn
	host, addr string
	list       *serverList
}

// perServerTLS verifies each server under the name it was dialed by, not
// the connection's target: the servers of a cluster have certificates
// for their own addresses.
type perServerTLS struct {
	credentials.TransportCredentials
}

func (c perServerTLS) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	sc, ok := conn.(*serverConn)
	if !ok {
		return c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	}
	out, info, err := c.TransportCredentials.ClientHandshake(ctx, sc.host, conn)
	sc.list.handshook(sc.addr, err)
	return out, info, err
}

func (c perServerTLS) Clone() credentials.TransportCredentials {
	return perServerTLS{c.TransportCredentials.Clone()}
}

// followServers keeps the server list up to date from WatchServers until
// ctx ends. Servers without WatchServers leave the list as it is.
func (a *agent) followServers(ctx context.Context, client api.NodeClient) error {
	for {
		err := a.watchServers(ctx, client)
		if ctx.Err() != nil {
			return nil
		}
		if status.Code(err) == codes.Unimplemented {
			a.lg.Info("the server does not tell other servers' addresses")
			return nil
		}
		a.lg.Debug("server list stream ended", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second/2 + rand.N(time.Second)):
		}
	}
}

func (a *agent) watchServers(ctx context.Context, client api.NodeClient) error {
	stream, err := client.WatchServers(ctx, &api.WatchServersRequest{})
	if err != nil {
		return err
	}
	for {
		list, err := stream.Recv()
		if err != nil {
			return err
		}
		if len(list.GetAddresses()) > 0 {
			a.servers.set(list.GetAddresses())
		}
	}
}
