package nodes

import (
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/api"
)

// ServerSet is the list of live API servers agents are told about. Its
// methods are safe for concurrent use.
type ServerSet struct {
	mu      sync.Mutex
	addrs   []string      // guarded by mu; sorted
	changed chan struct{} // guarded by mu; closed and replaced by a change
}

// NewServerSet returns a set holding addrs ("host:port").
func NewServerSet(addrs ...string) *ServerSet {
	s := &ServerSet{changed: make(chan struct{})}
	s.Set(addrs)
	return s
}

// Set replaces the list and reports whether it changed.
func (s *ServerSet) Set(addrs []string) bool {
	addrs = slices.Clone(addrs)
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(addrs, s.addrs) {
		return false
	}
	s.addrs = addrs
	close(s.changed)
	s.changed = make(chan struct{})
	return true
}

// Addresses returns a copy of the list.
func (s *ServerSet) Addresses() []string {
	addrs, _ := s.watch()
	return addrs
}

// Changed returns a channel closed at the list's next change.
func (s *ServerSet) Changed() <-chan struct{} {
	_, ch := s.watch()
	return ch
}

// watch returns the list and a channel closed at its next change.
func (s *ServerSet) watch() ([]string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs), s.changed
}

// WatchServers streams the server list to the calling node: the current
// list, then the list again after every change.
func (s *Service) WatchServers(_ *api.WatchServersRequest, stream api.Node_WatchServersServer) error {
	ctx := stream.Context()
	if _, err := callerNode(ctx); err != nil {
		return err
	}
	for {
		addrs, changed := s.servers.watch()
		if err := stream.Send(&api.ServerList{Addresses: addrs}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopped:
			return status.Error(codes.Unavailable, "server is shutting down")
		case <-changed:
		}
	}
}
