package streaming

import (
	"context"
	"errors"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/minik-dev/minik/server/auth"
)

// ErrNotNode means a gRPC call was not made with a node's certificate.
var ErrNotNode = errors.New("streaming: caller is not a node")

// PeerNodeName returns the node name of a gRPC call made over TLS with a
// verified node client certificate (CN "system:node:NAME", O
// "system:nodes"). It fails with ErrNotNode for any other caller.
func PeerNodeName(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", ErrNotNode
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(tlsInfo.State.VerifiedChains) == 0 || len(tlsInfo.State.VerifiedChains[0]) == 0 {
		return "", ErrNotNode
	}
	subject := tlsInfo.State.VerifiedChains[0][0].Subject
	name, ok := auth.NodeName(auth.User{Name: subject.CommonName, Groups: subject.Organization})
	if !ok {
		return "", ErrNotNode
	}
	return name, nil
}
