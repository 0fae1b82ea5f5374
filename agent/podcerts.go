package agent

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// podCertificates asks the server (CreatePodCertificate,
// WaitPodCertificate) for the certificates of the node's pods'
// podCertificate projections.
type podCertificates struct {
	client api.NodeClient
}

var _ pods.CertificateSource = podCertificates{}

// CreatePodCertificate implements pods.CertificateSource.
func (c podCertificates) CreatePodCertificate(ctx context.Context, pod *corev1.Pod, p pods.CertificateProjection, stub []byte, wait time.Duration) (pods.CertificateOutcome, error) {
	out, err := c.client.CreatePodCertificate(ctx, &api.CreatePodCertificateRequest{
		Namespace: pod.Namespace, PodName: pod.Name, PodUid: string(pod.UID),
		Volume: p.Volume, SourceIndex: int32(p.Source), SignerName: p.SignerName, KeyType: p.KeyType,
		StubPkcs10Request: stub, WaitSeconds: int32(wait / time.Second),
	})
	if err != nil {
		return pods.CertificateOutcome{}, err
	}
	return certificateOutcome(out), nil
}

// WaitPodCertificate implements pods.CertificateSource.
func (c podCertificates) WaitPodCertificate(ctx context.Context, pod *corev1.Pod, name string, wait time.Duration) (pods.CertificateOutcome, error) {
	out, err := c.client.WaitPodCertificate(ctx, &api.WaitPodCertificateRequest{
		Namespace: pod.Namespace, PodName: pod.Name, PodUid: string(pod.UID),
		RequestName: name, WaitSeconds: int32(wait / time.Second),
	})
	if status.Code(err) == codes.NotFound {
		return pods.CertificateOutcome{}, fmt.Errorf("%w: %v", pods.ErrNotFound, err)
	}
	if err != nil {
		return pods.CertificateOutcome{}, err
	}
	return certificateOutcome(out), nil
}

func certificateOutcome(out *api.PodCertificateOutcome) pods.CertificateOutcome {
	o := pods.CertificateOutcome{Request: out.RequestName, Reason: out.Reason, Message: out.Message}
	switch out.State {
	case api.PodCertificateOutcome_ISSUED:
		o.State = pods.CertificateIssued
		o.Chain = []byte(out.CertificateChain)
		o.NotBefore = time.Unix(out.NotBeforeUnix, 0)
		o.BeginRefreshAt = time.Unix(out.BeginRefreshAtUnix, 0)
		o.NotAfter = time.Unix(out.NotAfterUnix, 0)
	case api.PodCertificateOutcome_DENIED:
		o.State = pods.CertificateDenied
	case api.PodCertificateOutcome_FAILED:
		o.State = pods.CertificateFailed
	default:
		o.State = pods.CertificatePending
	}
	return o
}
