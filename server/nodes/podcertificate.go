package nodes

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// Pod certificates: a node asks for the certificates of its pods'
// podCertificate projections with CreatePodCertificate, which makes a
// PodCertificateRequest as the kubelet would, and learns what the signer
// did with WaitPodCertificate. The service, not the node, writes the
// request (as ServiceUser), once it has checked that the pod is the
// node's and projects what is asked; every other field comes from the
// stored pod, service account and node.

const (
	// maxPodCertificateWait bounds how long a call waits for a signer.
	maxPodCertificateWait = 30 * time.Second
	// defaultPodCertificateSeconds is a request's maxExpirationSeconds
	// when the projection sets none, as the API server defaults it.
	defaultPodCertificateSeconds = 86400
)

// CreatePodCertificate creates a PodCertificateRequest for a
// podCertificate projection of a pod of the calling node and returns its
// outcome so far.
func (s *Service) CreatePodCertificate(ctx context.Context, req *api.CreatePodCertificateRequest) (*api.PodCertificateOutcome, error) {
	node, err := callerNode(ctx)
	if err != nil {
		return nil, err
	}
	if req.Namespace == "" || req.PodName == "" || req.PodUid == "" || req.Volume == "" || req.SignerName == "" || req.KeyType == "" {
		return nil, status.Error(codes.InvalidArgument, "namespace, pod_name, pod_uid, volume, signer_name and key_type must be set")
	}
	pod := &corev1.Pod{}
	err = s.readStored(ctx, registry.ObjectKey("pods", req.Namespace, req.PodName), pod)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.podCertificateDenied(node, req, err)
	}
	if err != nil {
		return nil, grpcError(err)
	}
	proj := podCertificateProjection(pod, req.Volume, int(req.SourceIndex))
	switch {
	case pod.Spec.NodeName != node:
		return nil, s.podCertificateDenied(node, req, errors.New("pod not bound to the node"))
	case string(pod.UID) != req.PodUid:
		return nil, s.podCertificateDenied(node, req, errors.New("pod uid differs"))
	case proj == nil:
		return nil, s.podCertificateDenied(node, req, errors.New("no podCertificate projection there"))
	case proj.SignerName != req.SignerName || proj.KeyType != req.KeyType:
		return nil, s.podCertificateDenied(node, req, errors.New("the projection's signer or key type differs"))
	}
	if err := checkStubRequest(req.StubPkcs10Request, req.KeyType); err != nil {
		return nil, err
	}
	pcr, err := s.newPodCertificateRequest(ctx, node, pod, proj, req.StubPkcs10Request)
	if err != nil {
		return nil, err
	}
	created, err := s.certificates().PodCertificateRequests(pod.Namespace).Create(ctx, pcr, metav1.CreateOptions{})
	if err != nil {
		return nil, grpcError(err)
	}
	s.lg.Debug("pod certificate requested", "node", node, "pod", pod.Namespace+"/"+pod.Name,
		"request", created.Name, "signer", proj.SignerName)
	return s.awaitPodCertificate(ctx, created, waitFor(req.WaitSeconds))
}

// WaitPodCertificate returns the outcome of a PodCertificateRequest of a
// pod of the calling node, waiting while it is pending.
func (s *Service) WaitPodCertificate(ctx context.Context, req *api.WaitPodCertificateRequest) (*api.PodCertificateOutcome, error) {
	node, err := callerNode(ctx)
	if err != nil {
		return nil, err
	}
	if req.Namespace == "" || req.PodName == "" || req.PodUid == "" || req.RequestName == "" {
		return nil, status.Error(codes.InvalidArgument, "namespace, pod_name, pod_uid and request_name must be set")
	}
	pcr := &certificatesv1.PodCertificateRequest{}
	kv, err := s.st.Get(ctx, registry.ObjectKey("podcertificaterequests", req.Namespace, req.RequestName))
	if err == nil {
		err = registry.DecodeStored(kv.Value, pcr)
		pcr.ResourceVersion = strconv.FormatInt(kv.ModRevision, 10)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, grpcError(err)
	}
	// Another node's request is answered as a missing one: a node learns
	// nothing of the pods of other nodes.
	if err != nil || string(pcr.Spec.NodeName) != node || pcr.Spec.PodName != req.PodName || string(pcr.Spec.PodUID) != req.PodUid {
		return nil, status.Errorf(codes.NotFound, "podcertificaterequest %q of pod %s/%s not found", req.RequestName, req.Namespace, req.PodName)
	}
	return s.awaitPodCertificate(ctx, pcr, waitFor(req.WaitSeconds))
}

// waitFor is the wait a call asks for, bounded.
func waitFor(seconds int32) time.Duration {
	return min(time.Duration(max(seconds, 0))*time.Second, maxPodCertificateWait)
}

// podCertificateDenied is the answer to a node asking for a certificate
// it may not have. A missing pod is denied alike.
func (s *Service) podCertificateDenied(node string, req *api.CreatePodCertificateRequest, why error) error {
	s.lg.Info("pod certificate denied", "node", node, "pod", req.Namespace+"/"+req.PodName,
		"volume", req.Volume, "source", req.SourceIndex, "signer", req.SignerName, "reason", why.Error())
	return status.Errorf(codes.PermissionDenied, "node %q may not request a %s certificate of signer %q for volume %q source %d of pod %s/%s",
		node, req.KeyType, req.SignerName, req.Volume, req.SourceIndex, req.Namespace, req.PodName)
}

// podCertificateProjection returns the podCertificate source at index of
// pod's projected volume, nil if there is none.
func podCertificateProjection(pod *corev1.Pod, volume string, index int) *corev1.PodCertificateProjection {
	for _, v := range pod.Spec.Volumes {
		if v.Name != volume || v.Projected == nil {
			continue
		}
		if index < 0 || index >= len(v.Projected.Sources) {
			return nil
		}
		return v.Projected.Sources[index].PodCertificate
	}
	return nil
}

// checkStubRequest requires a DER PKCS#10 request, signed by its key, for
// a key of keyType.
func checkStubRequest(der []byte, keyType string) error {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "stub_pkcs10_request: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return status.Errorf(codes.InvalidArgument, "stub_pkcs10_request: %v", err)
	}
	if got := keyTypeOf(csr.PublicKey); got != keyType {
		return status.Errorf(codes.InvalidArgument, "stub_pkcs10_request holds a key of type %q, want %q", got, keyType)
	}
	return nil
}

// keyTypeOf names the key type of a podCertificate projection pub is of,
// "" for none.
func keyTypeOf(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.Size() * 8 {
		case 3072:
			return "RSA3072"
		case 4096:
			return "RSA4096"
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ECDSAP256"
		case elliptic.P384():
			return "ECDSAP384"
		case elliptic.P521():
			return "ECDSAP521"
		}
	case ed25519.PublicKey:
		return "ED25519"
	}
	return ""
}

// newPodCertificateRequest is the request for proj of pod on node, with
// the names and UIDs of the objects the service stores.
func (s *Service) newPodCertificateRequest(ctx context.Context, node string, pod *corev1.Pod, proj *corev1.PodCertificateProjection, stub []byte) (*certificatesv1.PodCertificateRequest, error) {
	sa := &corev1.ServiceAccount{}
	if err := s.readStored(ctx, registry.ObjectKey("serviceaccounts", pod.Namespace, pod.Spec.ServiceAccountName), sa); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.FailedPrecondition, "serviceaccount %q not found", pod.Spec.ServiceAccountName)
		}
		return nil, grpcError(err)
	}
	n := &corev1.Node{}
	if err := s.readStored(ctx, registry.ObjectKey("nodes", "", node), n); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.FailedPrecondition, "node %q not found", node)
		}
		return nil, grpcError(err)
	}
	seconds := int32(defaultPodCertificateSeconds)
	if proj.MaxExpirationSeconds != nil {
		seconds = *proj.MaxExpirationSeconds
	}
	return &certificatesv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, GenerateName: "req-",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}},
		},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName: proj.SignerName,
			PodName:    pod.Name, PodUID: pod.UID,
			ServiceAccountName: sa.Name, ServiceAccountUID: sa.UID,
			NodeName: types.NodeName(n.Name), NodeUID: n.UID,
			MaxExpirationSeconds:      &seconds,
			StubPKCS10Request:         stub,
			UnverifiedUserAnnotations: proj.UserAnnotations,
		},
	}, nil
}

// awaitPodCertificate returns the outcome of pcr once its signer ended
// it, or, with it pending, when wait has passed or the service stops. A
// request deleted meanwhile is NOT_FOUND.
func (s *Service) awaitPodCertificate(ctx context.Context, pcr *certificatesv1.PodCertificateRequest, wait time.Duration) (*api.PodCertificateOutcome, error) {
	out := podCertificateOutcome(pcr)
	if out.State != api.PodCertificateOutcome_PENDING || wait <= 0 {
		return out, nil
	}
	key := registry.ObjectKey("podcertificaterequests", pcr.Namespace, pcr.Name)
	rev, err := strconv.ParseInt(pcr.ResourceVersion, 10, 64)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "podcertificaterequest %q: resourceVersion %q", pcr.Name, pcr.ResourceVersion)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	events, err := s.st.Watch(wctx, key, rev)
	if err != nil {
		return nil, grpcError(err)
	}
	for {
		select {
		case <-s.stopped:
			// A server shutting down answers at once; the node asks again.
			return out, nil
		case ev, ok := <-events:
			if !ok {
				if err := ctx.Err(); err != nil {
					return nil, status.FromContextError(err).Err()
				}
				return out, nil
			}
			next, err := outcomeAfter(ev, key, out)
			if err != nil || next.State != api.PodCertificateOutcome_PENDING || ev.Type == store.EventError {
				// After an error event the watch is over: the node asks again.
				return next, err
			}
			out = next
		}
	}
}

// outcomeAfter is the outcome of the request at key after ev, out if ev
// does not change it.
func outcomeAfter(ev store.Event, key string, out *api.PodCertificateOutcome) (*api.PodCertificateOutcome, error) {
	switch {
	case ev.Key != key || ev.Type == store.EventProgress || ev.Type == store.EventError:
		return out, nil
	case ev.Type == store.EventDelete:
		return nil, status.Errorf(codes.NotFound, "podcertificaterequest %q was deleted", out.RequestName)
	}
	pcr := &certificatesv1.PodCertificateRequest{}
	if err := registry.DecodeStored(ev.Value, pcr); err != nil {
		return nil, grpcError(err)
	}
	return podCertificateOutcome(pcr), nil
}

// podCertificateOutcome is what a node learns of pcr.
func podCertificateOutcome(pcr *certificatesv1.PodCertificateRequest) *api.PodCertificateOutcome {
	out := &api.PodCertificateOutcome{RequestName: pcr.Name}
	for _, c := range pcr.Status.Conditions {
		if c.Status != metav1.ConditionTrue {
			continue
		}
		switch c.Type {
		case certificatesv1.PodCertificateRequestConditionTypeIssued:
			out.State = api.PodCertificateOutcome_ISSUED
			out.CertificateChain = pcr.Status.CertificateChain
			out.NotBeforeUnix = unixOf(pcr.Status.NotBefore)
			out.BeginRefreshAtUnix = unixOf(pcr.Status.BeginRefreshAt)
			out.NotAfterUnix = unixOf(pcr.Status.NotAfter)
			return out
		case certificatesv1.PodCertificateRequestConditionTypeDenied:
			out.State = api.PodCertificateOutcome_DENIED
		case certificatesv1.PodCertificateRequestConditionTypeFailed:
			out.State = api.PodCertificateOutcome_FAILED
		default:
			continue
		}
		out.Reason, out.Message = c.Reason, c.Message
		return out
	}
	return out
}

func unixOf(t *metav1.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

// certificates returns a certificates/v1 client that calls the API in
// process as ServiceUser.
func (s *Service) certificates() certificatesv1client.CertificatesV1Interface {
	s.certOnce.Do(func() {
		c, err := certificatesv1client.NewForConfig(s.cfg.API.LoopbackConfig(ServiceUser))
		if err != nil {
			// Only a malformed Host makes NewForConfig fail.
			panic(err)
		}
		s.certClient = c
	})
	return s.certClient
}
