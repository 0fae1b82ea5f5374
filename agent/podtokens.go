package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// podTokenTimeout bounds a PodToken call, which a pod's worker waits for.
const podTokenTimeout = 30 * time.Second

// podTokens gets the service account tokens of the node's pods from the
// server (PodToken), for their serviceAccountToken projections.
type podTokens struct {
	client api.NodeClient
}

var _ pods.TokenSource = podTokens{}

// PodToken implements pods.TokenSource.
func (t podTokens) PodToken(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, podTokenTimeout)
	defer cancel()
	resp, err := t.client.PodToken(ctx, &api.PodTokenRequest{
		Namespace: pod.Namespace, PodName: pod.Name, PodUid: string(pod.UID),
		ServiceAccount: pod.Spec.ServiceAccountName, Audience: audience, ExpirationSeconds: expirationSeconds,
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return resp.Token, time.Unix(resp.ExpirationUnix, 0), nil
}
