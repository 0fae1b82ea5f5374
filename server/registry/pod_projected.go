package registry

import (
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Pod certificate lifetimes, as Kubernetes bounds a podCertificate
// projection's maxExpirationSeconds: at least an hour, at most 91 days,
// or a day for the signers Kubernetes itself defines.
const (
	minPodCertificateSeconds           = 60 * 60
	maxPodCertificateSeconds           = 91 * 24 * 60 * 60
	maxKubernetesPodCertificateSeconds = 24 * 60 * 60
)

// podCertificateKeyTypes are the keys a pod certificate may be made for.
var podCertificateKeyTypes = []string{"RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519"}

// isKubernetesSigner tells whether signer is one Kubernetes defines (its
// domain is kubernetes.io or under it).
func isKubernetesSigner(signer string) bool {
	domain, _, _ := strings.Cut(signer, "/")
	return domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io")
}

// validateProjected checks a projected volume's sources: one kind each,
// files at distinct relative paths, and the rules of the
// clusterTrustBundle and podCertificate sources.
func validateProjected(p *corev1.ProjectedVolumeSource, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m := p.DefaultMode; m != nil && (*m < 0 || *m > 0o777) {
		errs = append(errs, field.Invalid(fp.Child("defaultMode"), *m, "must be a number between 0 and 0777 (octal), both inclusive"))
	}
	paths := map[string]bool{}
	addPath := func(p string) {
		if p == "" {
			return
		}
		if paths[p] {
			errs = append(errs, field.Invalid(fp, p, "conflicting duplicate paths"))
		}
		paths[p] = true
	}
	for i := range p.Sources {
		src := &p.Sources[i]
		sp := fp.Child("sources").Index(i)
		if n := len(setMembers(src)); n > 1 {
			errs = append(errs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
		}
		switch {
		case src.ConfigMap != nil:
			for _, it := range src.ConfigMap.Items {
				addPath(it.Path)
			}
		case src.Secret != nil:
			for _, it := range src.Secret.Items {
				addPath(it.Path)
			}
		case src.DownwardAPI != nil:
			for _, it := range src.DownwardAPI.Items {
				addPath(it.Path)
			}
		case src.ServiceAccountToken != nil:
			addPath(src.ServiceAccountToken.Path)
		case src.ClusterTrustBundle != nil:
			errs = append(errs, validateTrustBundleProjection(src.ClusterTrustBundle, sp.Child("clusterTrustBundle"))...)
			addPath(src.ClusterTrustBundle.Path)
		case src.PodCertificate != nil:
			c := src.PodCertificate
			errs = append(errs, validatePodCertificateProjection(c, sp.Child("podCertificate"))...)
			addPath(c.CredentialBundlePath)
			addPath(c.KeyPath)
			addPath(c.CertificateChainPath)
		}
	}
	return errs
}

// validateTrustBundleProjection requires a bundle name or a signer name
// (with a valid label selector), and a relative path.
func validateTrustBundleProjection(p *corev1.ClusterTrustBundleProjection, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case p.Name != nil && p.SignerName != nil:
		errs = append(errs, field.Invalid(fp, "", "only one of name and signerName may be used"))
	case p.Name != nil:
		name := *p.Name
		if name == "" {
			errs = append(errs, field.Required(fp.Child("name"), "must be a valid object name"))
			break
		}
		signer := ""
		if i := strings.LastIndex(name, ":"); i > 0 {
			signer = strings.Replace(name[:i], ":", "/", 1)
		}
		for _, msg := range trustBundleName(signer)(name, false) {
			errs = append(errs, field.Invalid(fp.Child("name"), name, "not a valid clustertrustbundlename: "+msg))
		}
		if p.LabelSelector != nil {
			errs = append(errs, field.Invalid(fp.Child("labelSelector"), "", "labelSelector must be unset if name is specified"))
		}
	case p.SignerName != nil:
		errs = append(errs, validateSignerName(*p.SignerName, fp.Child("signerName"))...)
		errs = append(errs, v1validation.ValidateLabelSelector(p.LabelSelector, v1validation.LabelSelectorValidationOptions{}, fp.Child("labelSelector"))...)
	default:
		errs = append(errs, field.Required(fp, "either name or signerName must be specified"))
	}
	if p.Path == "" {
		return append(errs, field.Required(fp.Child("path"), ""))
	}
	return append(errs, validateLocalPath(p.Path, fp.Child("path"))...)
}

// validatePodCertificateProjection requires a signer, a known key type, a
// lifetime within bounds when one is asked for, and at least one file at
// a relative path.
func validatePodCertificateProjection(c *corev1.PodCertificateProjection, fp *field.Path) field.ErrorList {
	errs := validateSignerName(c.SignerName, fp.Child("signerName"))
	if !slices.Contains(podCertificateKeyTypes, c.KeyType) {
		errs = append(errs, field.NotSupported(fp.Child("keyType"), c.KeyType, podCertificateKeyTypes))
	}
	if e := c.MaxExpirationSeconds; e != nil {
		limit := maxPodCertificateSeconds
		if isKubernetesSigner(c.SignerName) {
			limit = maxKubernetesPodCertificateSeconds
		}
		if *e < minPodCertificateSeconds {
			errs = append(errs, field.Invalid(fp.Child("maxExpirationSeconds"), *e,
				fmt.Sprintf("if provided, maxExpirationSeconds must be >= %d", minPodCertificateSeconds)))
		}
		if int(*e) > limit {
			errs = append(errs, field.Invalid(fp.Child("maxExpirationSeconds"), *e, fmt.Sprintf("if provided, maxExpirationSeconds must be <= %d", limit)))
		}
	}
	files := 0
	for _, f := range []struct {
		name, path string
	}{{"credentialBundlePath", c.CredentialBundlePath}, {"keyPath", c.KeyPath}, {"certificateChainPath", c.CertificateChainPath}} {
		if f.path != "" {
			files++
			errs = append(errs, validateLocalPath(f.path, fp.Child(f.name))...)
		}
	}
	if files == 0 {
		errs = append(errs, field.Required(fp, "specify at least one of credentialBundlePath, keyPath, and certificateChainPath"))
	}
	return errs
}

// validateLocalPath requires a relative path that does not climb out with
// ".." nor starts with "..", as volume file paths must be.
func validateLocalPath(p string, fp *field.Path) field.ErrorList {
	switch {
	case path.IsAbs(p):
		return field.ErrorList{field.Invalid(fp, p, "must be a relative path")}
	case slices.Contains(strings.Split(p, "/"), ".."):
		return field.ErrorList{field.Invalid(fp, p, "must not contain '..'")}
	case strings.HasPrefix(p, ".."):
		return field.ErrorList{field.Invalid(fp, p, "must not start with '..'")}
	}
	return nil
}
