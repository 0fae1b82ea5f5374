package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// reasonUnboundClaims is kube-scheduler's explanation for a pod whose
// claims are not bound yet: every node fails it alike.
const reasonUnboundClaims = "pod has unbound immediate PersistentVolumeClaims"

// claimsError says why a pod's claims keep it off every node before any
// node is looked at, as kube-scheduler's volume binding pre-filter does.
type claimsError struct {
	nodes  int
	reason string
}

func (e *claimsError) Error() string {
	return fmt.Sprintf("0/%d nodes are available: %s.", e.nodes, e.reason)
}

// checkClaims returns why pod cannot be placed yet because of the claims
// its volumes use (missing, being deleted or not bound), or nil. A claim
// that is bound is placed with its pod; minik does not restrict nodes by
// the volume's node affinity.
func checkClaims(pod *corev1.Pod, claims corelisters.PersistentVolumeClaimLister, nodes int) error {
	unbound := false
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		name := v.PersistentVolumeClaim.ClaimName
		claim, err := claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		switch {
		case apierrors.IsNotFound(err):
			return &claimsError{nodes, fmt.Sprintf("persistentvolumeclaim %q not found", name)}
		case err != nil:
			return err
		case claim.DeletionTimestamp != nil:
			return &claimsError{nodes, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)}
		case claim.Status.Phase != corev1.ClaimBound:
			unbound = true
		}
	}
	if unbound {
		return &claimsError{nodes, reasonUnboundClaims}
	}
	return nil
}
