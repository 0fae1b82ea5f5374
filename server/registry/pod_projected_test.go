package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// projectedVolume adds a projected volume of the sources to the pod.
func projectedVolume(p *corev1.Pod, sources ...corev1.VolumeProjection) {
	v := addVolume(p, "proj")
	v.EmptyDir, v.Projected = nil, &corev1.ProjectedVolumeSource{Sources: sources}
}

func TestValidatePodProjectedVolumes(t *testing.T) {
	str := func(s string) *string { return &s }
	secs := func(s int32) *int32 { return &s }
	ctb := func(c corev1.ClusterTrustBundleProjection) corev1.VolumeProjection {
		return corev1.VolumeProjection{ClusterTrustBundle: &c}
	}
	podCert := func(c corev1.PodCertificateProjection) corev1.VolumeProjection {
		if c.SignerName == "" {
			c.SignerName = "example.com/signer"
		}
		if c.KeyType == "" {
			c.KeyType = "ED25519"
		}
		return corev1.VolumeProjection{PodCertificate: &c}
	}
	const src = "spec.volumes[0].projected.sources[0]"
	runValidation(t, podResource, validPod, []validationCase[*corev1.Pod]{
		{"valid", func(p *corev1.Pod) {
			projectedVolume(p,
				ctb(corev1.ClusterTrustBundleProjection{Name: str("plain"), Path: "a.pem"}),
				ctb(corev1.ClusterTrustBundleProjection{Name: str("example.com:signer:one"), Path: "b.pem"}),
				ctb(corev1.ClusterTrustBundleProjection{SignerName: str("example.com/signer"), Path: "c.pem",
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"alive": "true"}}}),
				podCert(corev1.PodCertificateProjection{CredentialBundlePath: "cred.pem", MaxExpirationSeconds: secs(7862400)}))
		}, nil},
		{"bundle: name or signer", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{Path: "a.pem"}))
		}, []string{errKey(required, src+".clusterTrustBundle")}},
		{"bundle: not both", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{Name: str("a"), SignerName: str("example.com/s"), Path: "a.pem"}))
		}, []string{errKey(invalid, src+".clusterTrustBundle")}},
		{"bundle: name with a selector", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{Name: str("a"), Path: "a.pem", LabelSelector: &metav1.LabelSelector{}}))
		}, []string{errKey(invalid, src+".clusterTrustBundle.labelSelector")}},
		{"bundle: name of a bundle", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{Name: str("Not_A_Name"), Path: "a.pem"}))
		}, []string{errKey(invalid, src+".clusterTrustBundle.name")}},
		{"bundle: signer name", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{SignerName: str("nodomain"), Path: "a.pem"}))
		}, []string{errKey(invalid, src+".clusterTrustBundle.signerName")}},
		{"bundle: path required", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{Name: str("a")}))
		}, []string{errKey(required, src+".clusterTrustBundle.path")}},
		{"bundle: path relative", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{Name: str("a"), Path: "../a.pem"}))
		}, []string{errKey(invalid, src+".clusterTrustBundle.path")}},
		{"paths distinct", func(p *corev1.Pod) {
			projectedVolume(p, ctb(corev1.ClusterTrustBundleProjection{Name: str("a"), Path: "a.pem"}),
				ctb(corev1.ClusterTrustBundleProjection{Name: str("b"), Path: "a.pem"}))
		}, []string{errKey(invalid, "spec.volumes[0].projected")}},
		{"one kind per source", func(p *corev1.Pod) {
			s := ctb(corev1.ClusterTrustBundleProjection{Name: str("a"), Path: "a.pem"})
			s.DownwardAPI = &corev1.DownwardAPIProjection{}
			projectedVolume(p, s)
		}, []string{errKey(forbidden, src)}},
		{"pod certificate: an hour at least", func(p *corev1.Pod) {
			projectedVolume(p, podCert(corev1.PodCertificateProjection{KeyPath: "key.pem", MaxExpirationSeconds: secs(3599)}))
		}, []string{errKey(invalid, src+".podCertificate.maxExpirationSeconds")}},
		{"pod certificate: 91 days at most", func(p *corev1.Pod) {
			projectedVolume(p, podCert(corev1.PodCertificateProjection{KeyPath: "key.pem", MaxExpirationSeconds: secs(7862401)}))
		}, []string{errKey(invalid, src+".podCertificate.maxExpirationSeconds")}},
		{"pod certificate: a day at most of a Kubernetes signer", func(p *corev1.Pod) {
			projectedVolume(p, podCert(corev1.PodCertificateProjection{SignerName: "kubernetes.io/x", KeyPath: "key.pem", MaxExpirationSeconds: secs(86401)}))
		}, []string{errKey(invalid, src+".podCertificate.maxExpirationSeconds")}},
		{"pod certificate: key type", func(p *corev1.Pod) {
			projectedVolume(p, podCert(corev1.PodCertificateProjection{KeyType: "DSA", KeyPath: "key.pem"}))
		}, []string{errKey(notSupported, src+".podCertificate.keyType")}},
		{"pod certificate: a file", func(p *corev1.Pod) {
			projectedVolume(p, podCert(corev1.PodCertificateProjection{}))
		}, []string{errKey(required, src+".podCertificate")}},
	})
}

// TestPodCertificateLifetimeMessages checks the words clients match.
func TestPodCertificateLifetimeMessages(t *testing.T) {
	for _, tc := range []struct {
		secs int32
		want string
	}{{3599, "if provided, maxExpirationSeconds must be >= 3600"}, {7862401, "if provided, maxExpirationSeconds must be <= 7862400"}} {
		errs := validatePodCertificateProjection(&corev1.PodCertificateProjection{SignerName: "example.com/s", KeyType: "ED25519",
			KeyPath: "k", MaxExpirationSeconds: &tc.secs}, nil)
		if len(errs) != 1 || errs[0].Detail != tc.want {
			t.Errorf("maxExpirationSeconds %d: %v, want %q", tc.secs, errs, tc.want)
		}
	}
}
