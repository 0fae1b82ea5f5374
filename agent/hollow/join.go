package hollow

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
)

// Errors that retrying cannot fix; test with errors.Is. They are the node
// protocol's, as hollow nodes join the way agents do.
var (
	// ErrInvalidToken: the token is malformed.
	ErrInvalidToken = api.ErrInvalidToken
	// ErrCAMismatch: the server's CA does not hash to the token's pin.
	ErrCAMismatch = api.ErrCAMismatch
	// ErrTokenRefused: the server refused the join token.
	ErrTokenRefused = nodeclient.ErrTokenRefused
	// ErrRegistrationRefused: the server refused a node's registration
	// for another reason (e.g. an invalid node name).
	ErrRegistrationRefused = nodeclient.ErrRegistrationRefused
)

// register gets a certificate for node with the token, over the shared
// unauthenticated connection with the nodes' password, and returns a connection that authenticates
// as the node, with the node's config. Nothing is kept on disk.
func (h *hollow) register(ctx context.Context, node string) (*grpc.ClientConn, *api.NodeConfig, error) {
	reg, err := nodeclient.Register(ctx, h.anon, h.cfg.Token, node, h.password)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", h.cfg.Server, err)
	}
	conn, err := nodeclient.Dial(h.cfg.Server, h.roots, &reg.Certificate)
	if err != nil {
		return nil, nil, err
	}
	return conn, reg.Config, nil
}
