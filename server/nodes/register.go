package nodes

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/netip"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
)

// Register checks the join token and the registration rate, binds the
// name to the node's password (bind), signs the CSR's key as the node and
// allocates (or finds) the node's podCIDR. A node that presents its own
// certificate renews it: neither the token (which may have been rotated
// since it joined) nor the rate is checked.
func (s *Service) Register(ctx context.Context, req *api.RegisterRequest) (*api.RegisterResponse, error) {
	node := req.GetNodeName()
	caller, err := callerNode(ctx)
	hasCert := err == nil && caller == node
	var secret string
	if !hasCert {
		if secret, err = s.checkToken(req.GetToken()); err != nil {
			return nil, err
		}
	}
	if errs := validation.IsDNS1123Subdomain(node); len(errs) > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "node name %q: %s", node, strings.Join(errs, "; "))
	}
	if err := validPassword(req.GetNodePassword()); err != nil {
		return nil, err
	}
	pub, err := pki.PublicKeyFromCSR(req.GetCsr())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr: %v", err)
	}
	if !hasCert {
		if err := s.limiter.allow(secret); err != nil {
			return nil, err
		}
	}
	if err := s.bind(ctx, node, req.GetNodePassword(), hasCert); err != nil {
		return nil, err
	}
	cfg, err := s.nodeConfig(ctx, node, s.cidrs.claim)
	if err != nil {
		return nil, err
	}
	cert, err := s.cfg.Authority.SignClientCert(auth.NodeUserPrefix+node, []string{auth.GroupNodes}, pub, 0)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "signing the node certificate: %v", err)
	}
	s.lg.Info("node registered", "node", node, "podCIDR", cfg.PodCidr, "withCertificate", hasCert)
	return &api.RegisterResponse{Certificate: cert, Config: cfg}, nil
}

// Config returns the calling node's configuration.
func (s *Service) Config(ctx context.Context, _ *api.ConfigRequest) (*api.NodeConfig, error) {
	node, err := callerNode(ctx)
	if err != nil {
		return nil, err
	}
	return s.nodeConfig(ctx, node, s.cidrs.allocate)
}

// nodeConfig returns node's configuration with the podCIDR alloc finds
// or takes for it.
func (s *Service) nodeConfig(ctx context.Context, node string, alloc func(context.Context, string) (netip.Prefix, error)) (*api.NodeConfig, error) {
	cidr, err := alloc(ctx, node)
	if errors.Is(err, errCIDRFull) {
		return nil, status.Errorf(codes.ResourceExhausted, "no podCIDR left in %s for node %q", s.cidrs.prefix, node)
	}
	if err != nil {
		return nil, grpcError(err)
	}
	return &api.NodeConfig{
		PodCidr:          cidr.String(),
		ClusterCidr:      s.cidrs.prefix.String(),
		ServerAddresses:  s.servers.Addresses(),
		HeartbeatGraceMs: s.cfg.GracePeriod.Milliseconds(),
	}, nil
}

// checkToken accepts the full join token of this cluster or its secret,
// and returns the secret.
func (s *Service) checkToken(token string) (string, error) {
	bad := status.Error(codes.Unauthenticated, "invalid join token")
	hash, secret, err := api.ParseToken(token)
	if err != nil {
		return "", bad
	}
	if hash != "" && api.VerifyCAHash(s.cfg.Authority.CAPEM(), hash) != nil {
		return "", bad
	}
	want := s.cfg.Authority.TokenSecret()
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return "", bad
	}
	return secret, nil
}
