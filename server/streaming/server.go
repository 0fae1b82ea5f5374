package streaming

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
)

// Errors of the tunnel, wrapped with the node name.
var (
	// ErrNodeNotConnected means the node holds no control stream.
	ErrNodeNotConnected = errors.New("streaming: node not connected")
	// ErrOpenTimeout means the node did not open a data stream in time.
	ErrOpenTimeout = errors.New("streaming: node did not answer in time")
)

// DefaultOpenTimeout is how long a request waits for the agent's data
// stream.
const DefaultOpenTimeout = 30 * time.Second

// Server is both ends of the server side of the tunnel: the gRPC Tunnel
// service that agents connect to, and the API handler of the pods/log,
// pods/exec and pods/attach subresources that sends requests through it.
// Its methods are safe for concurrent use.
type Server struct {
	api.UnimplementedTunnelServer

	log      *slog.Logger
	nodeName func(ctx context.Context) (string, error)

	// OpenTimeout bounds the wait for an agent's data stream (set before
	// use; DefaultOpenTimeout).
	OpenTimeout time.Duration

	mu      sync.Mutex
	nodes   map[string]*nodeConn // guarded by mu; node name → its current control stream
	pending map[string]*pending  // guarded by mu; request id → waiting handler
}

// nodeConn is one control stream.
type nodeConn struct {
	name     string
	reqc     chan *api.TunnelRequest // to the stream's send loop
	done     chan struct{}           // closed when Connect returns
	replaced chan struct{}           // closed when a newer stream takes over
}

// pending is a request waiting for its data stream.
type pending struct {
	node string
	ch   chan *session // capacity 1; sent to with Server.mu held
}

// session is one data stream handed from Stream to the API handler. The
// Stream call lasts until the handler closes done.
type session struct {
	stream api.Tunnel_StreamServer
	done   chan struct{}
	once   sync.Once
}

func (s *session) close() { s.once.Do(func() { close(s.done) }) }

// NewServer returns a Server. nodeName tells which node a gRPC call comes
// from, from its authenticated identity; nil → PeerNodeName.
func NewServer(lg *slog.Logger, nodeName func(ctx context.Context) (string, error)) *Server {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if nodeName == nil {
		nodeName = PeerNodeName
	}
	return &Server{
		log:         lg.With("component", "streaming"),
		nodeName:    nodeName,
		OpenTimeout: DefaultOpenTimeout,
		nodes:       map[string]*nodeConn{},
		pending:     map[string]*pending{},
	}
}

// Register adds the Tunnel service to g.
func (s *Server) Register(g *grpc.Server) { api.RegisterTunnelServer(g, s) }

// Connected reports whether node holds a control stream.
func (s *Server) Connected(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[node] != nil
}

// Connect serves an agent's control stream: it sends the agent the
// requests for its node until the stream ends or a newer one replaces it.
func (s *Server) Connect(stream api.Tunnel_ConnectServer) error {
	ctx := stream.Context()
	node, err := s.nodeName(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "tunnel: %v", err)
	}
	hello, err := stream.Recv()
	if err != nil {
		return err
	}
	if hello.GetNodeName() != "" && hello.GetNodeName() != node {
		return status.Errorf(codes.PermissionDenied, "tunnel: node %q cannot connect as %q", node, hello.GetNodeName())
	}
	nc := &nodeConn{name: node, reqc: make(chan *api.TunnelRequest), done: make(chan struct{}), replaced: make(chan struct{})}
	s.addNode(nc)
	defer s.removeNode(nc)
	lg := s.log.With("node", node)
	lg.Info("tunnel connected")
	defer lg.Info("tunnel disconnected")

	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				errc <- err
				return
			}
		}
	}()
	for {
		select {
		case req := <-nc.reqc:
			if err := stream.Send(req); err != nil {
				return err
			}
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-nc.replaced:
			return status.Error(codes.Aborted, "tunnel: replaced by a newer connection")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) addNode(nc *nodeConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.nodes[nc.name]; old != nil {
		close(old.replaced)
	}
	s.nodes[nc.name] = nc
}

func (s *Server) removeNode(nc *nodeConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes[nc.name] == nc {
		delete(s.nodes, nc.name)
	}
	close(nc.done)
}

// Stream serves an agent's data stream: it hands the stream to the request
// named in its first frame and lasts until that request is done.
func (s *Server) Stream(stream api.Tunnel_StreamServer) error {
	ctx := stream.Context()
	node, err := s.nodeName(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "tunnel: %v", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return status.Error(codes.InvalidArgument, "tunnel: first frame must be open")
	}
	sess := &session{stream: stream, done: make(chan struct{})}
	if !s.deliver(open.GetRequestId(), node, sess) {
		return status.Errorf(codes.NotFound, "tunnel: no request %q for node %q", open.GetRequestId(), node)
	}
	select {
	case <-sess.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliver hands sess to the request id of node, if it still waits.
func (s *Server) deliver(id, node string, sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p == nil || p.node != node {
		return false
	}
	delete(s.pending, id)
	p.ch <- sess
	return true
}

// open sends req to node and waits for the agent's data stream. The caller
// must close the session it returns.
func (s *Server) open(ctx context.Context, node string, req *api.TunnelRequest) (*session, error) {
	id, err := newID()
	if err != nil {
		return nil, err
	}
	req.Id = id
	p := &pending{node: node, ch: make(chan *session, 1)}
	s.mu.Lock()
	nc := s.nodes[node]
	if nc != nil {
		s.pending[id] = p
	}
	s.mu.Unlock()
	if nc == nil {
		return nil, fmt.Errorf("node %q: %w", node, ErrNodeNotConnected)
	}
	defer s.abandon(id, p)

	timer := time.NewTimer(s.OpenTimeout)
	defer timer.Stop()
	select {
	case nc.reqc <- req:
	case <-nc.done:
		return nil, fmt.Errorf("node %q: %w", node, ErrNodeNotConnected)
	case <-timer.C:
		return nil, fmt.Errorf("node %q: %w", node, ErrOpenTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case sess := <-p.ch:
		return sess, nil
	case <-timer.C:
		return nil, fmt.Errorf("node %q: %w", node, ErrOpenTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// abandon forgets request id; a session delivered too late is closed.
func (s *Server) abandon(id string, p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[id] == p {
		delete(s.pending, id)
	}
	select {
	case sess := <-p.ch:
		// open returned before taking it: no one else will close it.
		sess.close()
	default:
	}
}

func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
