package registry

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bounds of a PodCertificateRequest's fields, as Kubernetes sets them.
const (
	maxPCRKeySize       = 10 * 1024  // spec.stubPKCS10Request
	maxPCRChainSize     = 100 * 1024 // status.certificateChain
	maxPCRUIDLength     = 128        // spec.podUID, serviceAccountUID, nodeUID
	pcrRefreshMargin    = 10 * time.Minute
	pcrNotBeforeSkew    = 5 * time.Minute
	pcrMinLeafLifetime  = time.Hour
	pcrLifetimeRangeMsg = "must be in the range [%d, %d]"
)

// pcrConditionTypes are the conditions a PodCertificateRequest may have,
// each ending it.
var pcrConditionTypes = []string{
	certificatesv1.PodCertificateRequestConditionTypeIssued,
	certificatesv1.PodCertificateRequestConditionTypeDenied,
	certificatesv1.PodCertificateRequestConditionTypeFailed,
}

var podCertificateRequestResource = newPodCertificateRequestResource()

// A PodCertificateRequest asks a signer for a certificate for a pod's
// key. Its spec is fixed at creation; its status changes once, from
// pending to issued, denied or failed, through the status subresource.
func newPodCertificateRequestResource() *Resource {
	r := &Resource{
		Name: "podcertificaterequests", Singular: "podcertificaterequest", Kind: "PodCertificateRequest",
		Group: GroupCertificates, Namespaced: true, HasStatus: true,
		New:     func() runtime.Object { return &certificatesv1.PodCertificateRequest{} },
		NewList: func() runtime.Object { return &certificatesv1.PodCertificateRequestList{} },
		PrepareForCreate: mutate(func(p *certificatesv1.PodCertificateRequest) {
			p.Status = certificatesv1.PodCertificateRequestStatus{}
		}),
		PrepareForUpdate: mutatePair(func(p, old *certificatesv1.PodCertificateRequest) {
			p.Status = old.Status
		}),
		PrepareForStatusUpdate: mutatePair(func(p, old *certificatesv1.PodCertificateRequest) {
			p.Spec = old.Spec
			// Status writes change no metadata but the managed fields.
			managed := p.ManagedFields
			p.ObjectMeta = *old.ObjectMeta.DeepCopy()
			p.ManagedFields = managed
		}),
		ValidateCreate: check(validatePCR),
		ValidateUpdate: checkPair(func(p, old *certificatesv1.PodCertificateRequest) field.ErrorList {
			errs := validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
			return immutable(errs, specPath, p.Spec, old.Spec)
		}),
		ValidateStatusUpdate: checkPair(func(p, old *certificatesv1.PodCertificateRequest) field.ErrorList {
			return validatePCRStatus(p, old, time.Now())
		}),
		FieldSet: selectable(func(p *certificatesv1.PodCertificateRequest) fields.Set {
			return metaFields(&p.ObjectMeta, fields.Set{
				"spec.signerName": p.Spec.SignerName, "spec.podName": p.Spec.PodName, "spec.nodeName": string(p.Spec.NodeName),
			})
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("PodName", "string", certificatesv1.PodCertificateRequestSpec{}.SwaggerDoc()["podName"], false),
			column("SignerName", "string", certificatesv1.PodCertificateRequestSpec{}.SwaggerDoc()["signerName"], false),
			column("State", "string", "Issued, Denied, Failed or Pending.", false),
			ageColumn(),
		},
		Row: printable(func(p *certificatesv1.PodCertificateRequest, now time.Time) []interface{} {
			state := "Pending"
			for _, c := range p.Status.Conditions {
				if c.Status == metav1.ConditionTrue {
					state = c.Type
				}
			}
			return []interface{}{p.Name, p.Spec.PodName, p.Spec.SignerName, state, since(p.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

func validatePCR(p *certificatesv1.PodCertificateRequest) field.ErrorList {
	errs := validateMeta(&p.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	s := &p.Spec
	errs = append(errs, validateSignerName(s.SignerName, specPath.Child("signerName"))...)
	for k := range s.UnverifiedUserAnnotations {
		errs = append(errs, validation.IsDomainPrefixedKey(specPath.Child("unverifiedUserAnnotations"), strings.ToLower(k))...)
	}
	for _, n := range []struct {
		name, value string
	}{{"podName", s.PodName}, {"serviceAccountName", s.ServiceAccountName}, {"nodeName", string(s.NodeName)}} {
		for _, msg := range validation.IsDNS1123Subdomain(n.value) {
			errs = append(errs, field.Invalid(specPath.Child(n.name), n.value, msg))
		}
	}
	for _, u := range []struct {
		name, value string
	}{{"podUID", string(s.PodUID)}, {"serviceAccountUID", string(s.ServiceAccountUID)}, {"nodeUID", string(s.NodeUID)}} {
		switch {
		case u.value == "":
			errs = append(errs, field.Invalid(specPath.Child(u.name), u.value, "must not be empty"))
		case len(u.value) > maxPCRUIDLength:
			errs = append(errs, field.TooLong(specPath.Child(u.name), "", maxPCRUIDLength))
		}
	}
	if s.MaxExpirationSeconds == nil {
		return append(errs, field.Required(specPath.Child("maxExpirationSeconds"), "must be set"))
	}
	limit := maxPodCertificateSeconds
	if isKubernetesSigner(s.SignerName) {
		limit = maxKubernetesPodCertificateSeconds
	}
	if e := int(*s.MaxExpirationSeconds); e < minPodCertificateSeconds || e > limit {
		errs = append(errs, field.Invalid(specPath.Child("maxExpirationSeconds"), e, fmt.Sprintf(pcrLifetimeRangeMsg, minPodCertificateSeconds, limit)))
	}
	if len(s.StubPKCS10Request) == 0 {
		return append(errs, field.Required(specPath.Child("stubPKCS10Request"), ""))
	}
	return append(errs, validateStubRequest(s.StubPKCS10Request)...)
}

// checkPodKey requires a key of a kind and size pods' certificates may
// have: Ed25519, ECDSA on P-256, P-384 or P-521, RSA of 3072 or 4096 bits.
func checkPodKey(key any) string {
	switch k := key.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return "elliptic public keys must use curve P256, P384, or P521"
		}
	case *rsa.PublicKey:
		if bits := k.Size() * 8; bits != 3072 && bits != 4096 {
			return "RSA keys must have modulus size 3072 or 4096"
		}
	default:
		return "unknown public key type; supported types are Ed25519, ECDSA, and RSA"
	}
	return ""
}

func validateStubRequest(der []byte) field.ErrorList {
	p := specPath.Child("stubPKCS10Request")
	if len(der) > maxPCRKeySize {
		return field.ErrorList{field.TooLong(p, "", maxPCRKeySize)}
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return field.ErrorList{field.Invalid(p, "", "must be a valid PKCS#10 CSR")}
	}
	if msg := checkPodKey(req.PublicKey); msg != "" {
		return field.ErrorList{field.Invalid(p, "", msg)}
	}
	if req.CheckSignature() != nil {
		return field.ErrorList{field.Invalid(p, "", "invalid signature")}
	}
	return nil
}

func pcrHas(p *certificatesv1.PodCertificateRequest, types ...string) bool {
	for _, c := range p.Status.Conditions {
		if c.Status == metav1.ConditionTrue && slices.Contains(types, c.Type) {
			return true
		}
	}
	return false
}

// validatePCRStatus checks a status write: at most one of the known
// conditions, all True; nothing changes once the request has ended;
// denying or failing sets only the condition; issuing sets a chain whose
// leaf holds the requested key and whose times the status repeats.
func validatePCRStatus(p, old *certificatesv1.PodCertificateRequest, now time.Time) field.ErrorList {
	errs := validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	condPath := statusPath.Child("conditions")
	known := 0
	for i, c := range p.Status.Conditions {
		if !slices.Contains(pcrConditionTypes, c.Type) {
			errs = append(errs, field.NotSupported(condPath.Index(i).Child("type"), c.Type, pcrConditionTypes))
			continue
		}
		if known++; known > 1 {
			errs = append(errs, field.Invalid(condPath.Index(i).Child("type"), c.Type, `There may be at most one condition with type "Issued", "Denied", or "Failed"`))
		}
		if c.Status != metav1.ConditionTrue {
			errs = append(errs, field.NotSupported(condPath.Index(i).Child("status"), c.Status, []metav1.ConditionStatus{metav1.ConditionTrue}))
		}
	}
	errs = append(errs, v1validation.ValidateConditions(p.Status.Conditions, condPath)...)
	if len(errs) > 0 {
		return errs
	}
	unchanged := func(want certificatesv1.PodCertificateRequestStatus, msg string) field.ErrorList {
		if apiequality.Semantic.DeepEqual(p.Status, want) {
			return nil
		}
		return field.ErrorList{field.Invalid(statusPath, "", msg)}
	}
	switch {
	case pcrHas(old, pcrConditionTypes...):
		return unchanged(old.Status, "immutable after PodCertificateRequest is issued, denied, or failed")
	case pcrHas(p, certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed):
		return unchanged(certificatesv1.PodCertificateRequestStatus{Conditions: p.Status.Conditions},
			"non-condition status fields must be empty when denying or failing the PodCertificateRequest")
	case pcrHas(p, certificatesv1.PodCertificateRequestConditionTypeIssued):
		return validateIssued(p, old, now)
	}
	return unchanged(old.Status, `status is immutable unless transitioning to "Issued", "Denied", or "Failed"`)
}

// validateIssued checks the chain and times of an issued request.
func validateIssued(p, old *certificatesv1.PodCertificateRequest, now time.Time) field.ErrorList {
	st := &p.Status
	chainPath := statusPath.Child("certificateChain")
	if len(st.CertificateChain) > maxPCRChainSize {
		return field.ErrorList{field.TooLong(chainPath, "", maxPCRChainSize)}
	}
	var certs []*x509.Certificate
	rest := []byte(st.CertificateChain)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return field.ErrorList{field.Invalid(chainPath, "", "issued certificate chain must consist entirely of CERTIFICATE PEM blocks")}
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return field.ErrorList{field.Invalid(chainPath, "", fmt.Sprintf("certificate %d does not parse as valid X.509", len(certs)))}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return field.ErrorList{field.Invalid(chainPath, "", "issued certificate chain must contain at least one certificate")}
	}
	leaf := certs[0]
	var errs field.ErrorList
	for _, n := range leaf.DNSNames {
		if n == "" || strings.Contains(n, "..") || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") {
			errs = append(errs, field.Invalid(chainPath, n, "leaf certificate contains an invalid DNSName"))
		}
	}
	for _, a := range leaf.EmailAddresses {
		if _, err := mail.ParseAddress(a); err != nil {
			errs = append(errs, field.Invalid(chainPath, a, "leaf certificate should not contain invalid EmailAddress"))
		}
	}
	want, err := requestedKey(&old.Spec)
	if err != nil {
		return append(errs, field.Invalid(specPath, "", err.Error()))
	}
	if k, ok := want.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(leaf.PublicKey) {
		return append(errs, field.Invalid(chainPath, "", "leaf certificate was not issued to the requested public key"))
	}
	for _, t := range []struct {
		name string
		v    *metav1.Time
	}{{"notBefore", st.NotBefore}, {"notAfter", st.NotAfter}, {"beginRefreshAt", st.BeginRefreshAt}} {
		if t.v == nil {
			errs = append(errs, field.Required(statusPath.Child(t.name), "must be present and consistent with the issued certificate"))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	switch {
	case !st.NotBefore.Time.Equal(leaf.NotBefore):
		return field.ErrorList{field.Invalid(statusPath.Child("notBefore"), st.NotBefore.Time, "must be set to the NotBefore time encoded in the leaf certificate")}
	case st.NotBefore.Time.Sub(now).Abs() > pcrNotBeforeSkew:
		return field.ErrorList{field.Invalid(statusPath.Child("notBefore"), st.NotBefore.Time, "must be set to within 5 minutes of kube-apiserver's current time")}
	case !st.NotAfter.Time.Equal(leaf.NotAfter):
		return field.ErrorList{field.Invalid(statusPath.Child("notAfter"), st.NotAfter.Time, "must be set to the NotAfter time encoded in the leaf certificate")}
	case lifetime < pcrMinLeafLifetime:
		return field.ErrorList{field.Invalid(chainPath, lifetime.String(), "leaf certificate lifetime must be >= 1 hour")}
	case lifetime > time.Duration(*old.Spec.MaxExpirationSeconds)*time.Second:
		return field.ErrorList{field.Invalid(chainPath, lifetime.String(),
			fmt.Sprintf("leaf certificate lifetime must be <= spec.maxExpirationSeconds (%d)", *old.Spec.MaxExpirationSeconds))}
	case st.BeginRefreshAt.Time.Before(st.NotBefore.Time.Add(pcrRefreshMargin)):
		return field.ErrorList{field.Invalid(statusPath.Child("beginRefreshAt"), st.BeginRefreshAt.Time, "must be at least 10 minutes after status.notBefore")}
	case st.BeginRefreshAt.Time.After(st.NotAfter.Time.Add(-pcrRefreshMargin)):
		return field.ErrorList{field.Invalid(statusPath.Child("beginRefreshAt"), st.BeginRefreshAt.Time, "must be at least 10 minutes before status.notAfter")}
	}
	return nil
}

// requestedKey is the public key a request asks a certificate for.
func requestedKey(s *certificatesv1.PodCertificateRequestSpec) (crypto.PublicKey, error) {
	req, err := x509.ParseCertificateRequest(s.StubPKCS10Request)
	if err != nil {
		return nil, fmt.Errorf("stubPKCS10Request must be a valid PKCS#10 CSR")
	}
	return req.PublicKey, nil
}
