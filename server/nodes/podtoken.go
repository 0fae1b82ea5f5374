package nodes

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/store"
)

// PodToken issues a bound service account token for a pod of the calling
// node, as the kubelet gets one with a TokenRequest for the pod's
// serviceAccountToken projections. A node gets tokens only for the pods
// bound to it, and only as their own service account.
func (s *Service) PodToken(ctx context.Context, req *api.PodTokenRequest) (*api.PodTokenResponse, error) {
	node, err := callerNode(ctx)
	if err != nil {
		return nil, err
	}
	if s.cfg.Tokens == nil {
		return nil, status.Error(codes.Unimplemented, "this server does not issue service account tokens")
	}
	if err := checkPodTokenRequest(req); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{}
	err = s.readStored(ctx, registry.ObjectKey("pods", req.Namespace, req.PodName), pod)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.podTokenDenied(node, req, err)
	}
	if err != nil {
		return nil, grpcError(err)
	}
	switch {
	case pod.Spec.NodeName != node:
		return nil, s.podTokenDenied(node, req, errors.New("pod not bound to the node"))
	case string(pod.UID) != req.PodUid:
		return nil, s.podTokenDenied(node, req, errors.New("pod uid differs"))
	case pod.Spec.ServiceAccountName != req.ServiceAccount:
		return nil, s.podTokenDenied(node, req, errors.New("not the pod's service account"))
	}
	sa := &corev1.ServiceAccount{}
	if err := s.readStored(ctx, registry.ObjectKey("serviceaccounts", req.Namespace, req.ServiceAccount), sa); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "serviceaccount %q not found", req.ServiceAccount)
		}
		return nil, grpcError(err)
	}
	c := s.podTokenClaims(ctx, node, req, pod, sa)
	token, err := s.cfg.Tokens.Issue(c)
	if err != nil {
		return nil, grpcError(err)
	}
	// The node renews an extended token as if it expired when it says
	// it should: the response gives that time, as a TokenRequest does.
	expiry := c.Expiry
	if !c.WarnAfter.IsZero() {
		expiry = c.WarnAfter
	}
	return &api.PodTokenResponse{Token: token, ExpirationUnix: expiry.Unix()}, nil
}

// checkPodTokenRequest refuses a request that lacks a field or asks for a
// lifetime the TokenRequest API would refuse.
func checkPodTokenRequest(req *api.PodTokenRequest) error {
	if req.Namespace == "" || req.PodName == "" || req.PodUid == "" || req.ServiceAccount == "" {
		return status.Error(codes.InvalidArgument, "namespace, pod_name, pod_uid and service_account must be set")
	}
	min := int64(serviceaccount.MinExpiration / time.Second)
	if req.ExpirationSeconds < min || req.ExpirationSeconds > serviceaccount.MaxExpirationSeconds {
		return status.Errorf(codes.InvalidArgument, "expiration_seconds %d: may not be less than %d seconds nor more than 2^32", req.ExpirationSeconds, min)
	}
	return nil
}

// podTokenDenied is the answer to a node asking for a token it may not
// have. A missing pod is denied alike, so that a node learns nothing of
// the pods of other nodes.
func (s *Service) podTokenDenied(node string, req *api.PodTokenRequest, why error) error {
	s.lg.Info("pod token denied", "node", node, "pod", req.Namespace+"/"+req.PodName,
		"serviceAccount", req.ServiceAccount, "reason", why.Error())
	return status.Errorf(codes.PermissionDenied, "node %q may not get a token of service account %q for pod %s/%s",
		node, req.ServiceAccount, req.Namespace, req.PodName)
}

// podTokenClaims are the claims of a token of sa bound to pod on node.
func (s *Service) podTokenClaims(ctx context.Context, node string, req *api.PodTokenRequest, pod *corev1.Pod, sa *corev1.ServiceAccount) serviceaccount.Claims {
	now := s.cfg.Now()
	c := serviceaccount.Claims{
		ID: uuid.NewString(), IssuedAt: now, NotBefore: now,
		Expiry:         now.Add(time.Duration(req.ExpirationSeconds) * time.Second),
		Namespace:      req.Namespace,
		ServiceAccount: serviceaccount.Ref{Name: sa.Name, UID: string(sa.UID)},
		Pod:            &serviceaccount.Ref{Name: pod.Name, UID: string(pod.UID)},
		Node:           &serviceaccount.Ref{Name: node},
	}
	apiAudiences := s.apiAudiences()
	c.Audiences = apiAudiences
	if req.Audience != "" {
		c.Audiences = []string{req.Audience}
	}
	if req.ExpirationSeconds == serviceaccount.WarnOnlyExpirationSeconds && slices.Equal(c.Audiences, apiAudiences) {
		c.WarnAfter, c.Expiry = c.Expiry, now.Add(serviceaccount.ExtendedExpiration)
	}
	n := &corev1.Node{}
	// A node that cannot be read leaves its uid out, as in Kubernetes.
	if err := s.readStored(ctx, registry.ObjectKey("nodes", "", node), n); err == nil {
		c.Node.UID = string(n.UID)
	}
	return c
}

// apiAudiences are the audiences of tokens the API accepts.
func (s *Service) apiAudiences() []string {
	if len(s.cfg.APIAudiences) > 0 {
		return s.cfg.APIAudiences
	}
	return []string{s.cfg.Tokens.URL()}
}

// readStored reads and decodes the object stored at key. A missing one is
// store.ErrNotFound.
func (s *Service) readStored(ctx context.Context, key string, obj sessionObject) error {
	kv, err := s.st.Get(ctx, key)
	if err != nil {
		return err
	}
	return registry.DecodeStored(kv.Value, obj)
}
