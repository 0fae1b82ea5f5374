package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"

	"github.com/minik-dev/minik/server/serviceaccount"
	"github.com/minik-dev/minik/store"
)

// ServiceAccount admission of pods, as Kubernetes' ServiceAccount
// admission plugin does it on create: the pod runs as its namespace's
// "default" service account unless it names one, the account must exist,
// and unless the pod or the account opts out, every container gets the
// account's API credentials (a bound token, the cluster CA and the
// namespace) in a projected volume at ServiceAccountMountPath.

const (
	// DefaultServiceAccount is the service account of a pod that names
	// none.
	DefaultServiceAccount = "default"
	// ServiceAccountMountPath is where containers find their credentials.
	ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// ServiceAccountVolumePrefix starts the name of the credentials
	// volume; a random suffix follows, as in Kubernetes.
	ServiceAccountVolumePrefix = "kube-api-access-"
	// ServiceAccountTokenSeconds is the lifetime admission asks for the
	// token: an hour and seven seconds, the value Kubernetes uses so that
	// these tokens can be told apart from requested ones.
	ServiceAccountTokenSeconds = serviceaccount.WarnOnlyExpirationSeconds
	// RootCAConfigMap is the ConfigMap that holds the cluster CA in every
	// namespace.
	RootCAConfigMap = "kube-root-ca.crt"
	// mirrorPodAnnotation marks a node's static pod mirrored in the API.
	mirrorPodAnnotation = corev1.MirrorPodAnnotationKey
)

// defaultSALookups bounds the reads of a missing "default" service
// account: a pod created right after its namespace may arrive before the
// controller made the account, so admission waits a little as
// Kubernetes' does (10 reads, 100 to 200 ms apart).
var defaultSALookups = 10

// admitPodServiceAccount applies ServiceAccount admission to a new,
// defaulted pod. A pod whose service account does not exist is refused
// with 403 Forbidden. Mirror pods are left as they are. Only the name is
// defaulted when the server issues no service account tokens
// (Config.ServiceAccounts).
func (s *Server) admitPodServiceAccount(ctx context.Context, pod *corev1.Pod) error {
	if _, mirror := pod.Annotations[mirrorPodAnnotation]; mirror {
		return nil
	}
	// A pod that names its account only in the deprecated field runs
	// as it, and that field then follows the current one, as the API's
	// conversion keeps them.
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = pod.Spec.DeprecatedServiceAccount
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccount
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	if s.cfg.ServiceAccounts == nil {
		// A server that issues no tokens has no credentials to give, and
		// runs without the controllers that make the accounts.
		return nil
	}
	sa, err := s.lookupServiceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return apierrors.NewForbidden(schemaGR("pods"), pod.Name,
			fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if shouldAutomount(sa, pod) {
		mountServiceAccountToken(pod)
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), sa.ImagePullSecrets...)
	}
	return nil
}

// lookupServiceAccount reads a service account (shared: read-only). A
// missing account is a NotFound error worded as Kubernetes words it.
func (s *Server) lookupServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	tries := 1
	if name == DefaultServiceAccount {
		tries = defaultSALookups
	}
	for try := 0; ; try++ {
		obj, err := s.readObject(ctx, "serviceaccounts", namespace, name)
		if err == nil {
			return obj.(*corev1.ServiceAccount), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if try+1 >= tries {
			return nil, apierrors.NewNotFound(schemaGR("serviceaccount"), name)
		}
		wait := time.Duration(100+rand.IntN(100)) * time.Millisecond
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// shouldAutomount tells whether pod gets its account's credentials: the
// pod's choice wins, then the account's, then yes.
func shouldAutomount(sa *corev1.ServiceAccount, pod *corev1.Pod) bool {
	if v := pod.Spec.AutomountServiceAccountToken; v != nil {
		return *v
	}
	if sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountServiceAccountToken mounts the credentials volume read-only in
// every init and regular container that mounts nothing at
// ServiceAccountMountPath, adding the volume if one of them needs it and
// the pod has none yet.
func mountServiceAccountToken(pod *corev1.Pod) {
	name, has := "", false
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, ServiceAccountVolumePrefix) {
			name, has = v.Name, true
			break
		}
	}
	if name == "" {
		name = ServiceAccountVolumePrefix + randomSuffix()
	}
	mount := corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: ServiceAccountMountPath}
	needed := false
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !mountsAt(&cs[i], ServiceAccountMountPath) {
				cs[i].VolumeMounts = append(cs[i].VolumeMounts, mount)
				needed = true
			}
		}
	}
	if needed && !has {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         name,
			VolumeSource: corev1.VolumeSource{Projected: serviceAccountVolumeSource()},
		})
	}
}

// mountsAt tells whether c already mounts something at path.
func mountsAt(c *corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

// serviceAccountVolumeSource is the credentials volume: the token, the
// cluster CA and the pod's namespace.
func serviceAccountVolumeSource() *corev1.ProjectedVolumeSource {
	return &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To(corev1.ProjectedVolumeSourceDefaultMode),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Path: "token", ExpirationSeconds: ptr.To[int64](ServiceAccountTokenSeconds),
			}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}
}
