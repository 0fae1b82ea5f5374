package pods

import (
	"encoding/pem"
	"fmt"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// A clusterTrustBundle projection writes one file: the certificates of
// the bundle it names, or of every bundle of its signer whose labels its
// selector matches (a nil selector matches none, an empty one all), each
// certificate once, in a stable order. A source that selects nothing is
// an empty file when optional and keeps the volume from being set up
// otherwise.

// maxTrustSelectorLength bounds the selector of a projection, as the
// kubelet bounds it.
const maxTrustSelectorLength = 100 * 1024

// trustBundleFile adds the file of the clusterTrustBundle projection p.
func trustBundleFile(out map[string]volumeFile, p *corev1.ClusterTrustBundleProjection, def *int32, objs *Objects) error {
	var bundles []*certificatesv1.ClusterTrustBundle
	switch {
	case p.Name != nil:
		b := objs.ClusterTrustBundles[*p.Name]
		if b == nil {
			if isTrue(p.Optional) {
				break
			}
			return missingf("clustertrustbundle %q not found", *p.Name)
		}
		bundles = append(bundles, b)
	case p.SignerName != nil:
		sel, err := metav1.LabelSelectorAsSelector(p.LabelSelector)
		if err != nil {
			return fmt.Errorf("clusterTrustBundle label selector: %w", err)
		}
		if n := len(sel.String()); n > maxTrustSelectorLength {
			return fmt.Errorf("clusterTrustBundle label selector length (%d) is larger than %d", n, maxTrustSelectorLength)
		}
		bundles = objs.trustBundlesOf(*p.SignerName, sel)
		if len(bundles) == 0 && !isTrue(p.Optional) {
			return missingf("combination of signerName %q and labelSelector matched zero ClusterTrustBundles", *p.SignerName)
		}
	default:
		return fmt.Errorf("clusterTrustBundle projection requires either name or signerName to be set")
	}
	out[p.Path] = volumeFile{data: trustAnchors(bundles), mode: fileMode(nil, def)}
	return nil
}

// trustBundlesOf returns the bundles of signer whose labels sel matches.
func (o *Objects) trustBundlesOf(signer string, sel labels.Selector) []*certificatesv1.ClusterTrustBundle {
	var out []*certificatesv1.ClusterTrustBundle
	for _, b := range o.ClusterTrustBundles {
		if b.Spec.SignerName == signer && sel.Matches(labels.Set(b.Labels)) {
			out = append(out, b)
		}
	}
	return out
}

// trustAnchors is the PEM of every certificate of bundles, each once,
// ordered by its DER bytes: the file stays the same, and is not
// rewritten, until a certificate comes or goes. What is not a PEM block
// is skipped (the API server admits only CERTIFICATE blocks).
func trustAnchors(bundles []*certificatesv1.ClusterTrustBundle) []byte {
	seen := map[string]bool{}
	var ders []string
	for _, b := range bundles {
		rest := []byte(b.Spec.TrustBundle)
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if d := string(block.Bytes); !seen[d] {
				seen[d] = true
				ders = append(ders, d)
			}
		}
	}
	slices.Sort(ders)
	out := []byte{}
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(d)})...)
	}
	return out
}
