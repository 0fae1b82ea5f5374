package registry

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// GroupCertificates is the API group of certificate signing requests and
// cluster trust bundles.
const GroupCertificates = "certificates.k8s.io"

// MaxTrustBundleSize bounds spec.trustBundle of a ClusterTrustBundle, as
// Kubernetes does.
const MaxTrustBundleSize = 1 << 20

// minCSRExpirationSeconds is the shortest certificate a CSR may ask for.
const minCSRExpirationSeconds = 600

var (
	clusterTrustBundleResource = newClusterTrustBundleResource()
	csrResource                = newCSRResource()
)

// Approval serves the approval subresource of a kind (the
// CertificateSigningRequest's): a write through it changes only the
// approval conditions. Its funcs are set, typed as the Resource's.
type Approval struct {
	// PrepareForUpdate keeps everything of old in obj but what an
	// approval may change.
	PrepareForUpdate func(obj, old runtime.Object)
	// ValidateUpdate checks an approval write.
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
}

func newClusterTrustBundleResource() *Resource {
	return plainResource(&Resource{
		Name: "clustertrustbundles", Singular: "clustertrustbundle", Kind: "ClusterTrustBundle", Group: GroupCertificates,
		New:     func() runtime.Object { return &certificatesv1.ClusterTrustBundle{} },
		NewList: func() runtime.Object { return &certificatesv1.ClusterTrustBundleList{} },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("SignerName", "string", certificatesv1.ClusterTrustBundleSpec{}.SwaggerDoc()["signerName"], false),
		},
		Row: printable(func(b *certificatesv1.ClusterTrustBundle, _ time.Time) []interface{} {
			return []interface{}{b.Name, orNone(b.Spec.SignerName)}
		}),
	}, validateClusterTrustBundle, func(b, old *certificatesv1.ClusterTrustBundle) field.ErrorList {
		return immutable(nil, specPath.Child("signerName"), b.Spec.SignerName, old.Spec.SignerName)
	})
}

func validateClusterTrustBundle(b *certificatesv1.ClusterTrustBundle) field.ErrorList {
	errs := validateMeta(&b.ObjectMeta, false, trustBundleName(b.Spec.SignerName))
	if b.Spec.SignerName != "" {
		errs = append(errs, validateSignerName(b.Spec.SignerName, specPath.Child("signerName"))...)
	}
	return append(errs, validateTrustBundle(b.Spec.TrustBundle, specPath.Child("trustBundle"))...)
}

// trustBundleName is the rule for the name of a bundle of signer: with a
// signer, the signer name with "/" made ":" then ":" and a DNS subdomain;
// without, a DNS subdomain without ":".
func trustBundleName(signer string) apivalidation.ValidateNameFunc {
	return func(name string, prefix bool) []string {
		if signer == "" {
			if strings.Contains(name, ":") {
				return []string{`ClusterTrustBundle without signer name must not have ":" in its name`}
			}
			return apivalidation.NameIsDNSSubdomain(name, prefix)
		}
		want := strings.ReplaceAll(signer, "/", ":") + ":"
		rest, ok := strings.CutPrefix(name, want)
		if !ok {
			return []string{fmt.Sprintf("ClusterTrustBundle for signerName %s must be named with prefix %s", signer, want)}
		}
		return apivalidation.NameIsDNSSubdomain(rest, prefix)
	}
}

// validateTrustBundle requires PEM CERTIFICATE blocks without headers,
// each a CA certificate, at least one, none twice.
func validateTrustBundle(bundle string, path *field.Path) field.ErrorList {
	if len(bundle) > MaxTrustBundleSize {
		return field.ErrorList{field.TooLong(path, "", MaxTrustBundleSize)}
	}
	const omitted = "<value omitted>"
	var errs field.ErrorList
	seen := map[string]int{}
	rest := []byte(bundle)
	for i := 0; ; i++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		var msg string
		switch cert, err := x509.ParseCertificate(b.Bytes); {
		case b.Type != "CERTIFICATE":
			msg = fmt.Sprintf("entry %d has bad block type: %v", i, b.Type)
		case len(b.Headers) != 0:
			msg = fmt.Sprintf("entry %d has PEM block headers", i)
		case err != nil:
			msg = fmt.Sprintf("entry %d does not parse as X.509", i)
		case !cert.IsCA:
			msg = fmt.Sprintf("entry %d does not have the CA bit set", i)
		case !cert.BasicConstraintsValid:
			msg = fmt.Sprintf("entry %d has invalid basic constraints", i)
		case seen[string(b.Bytes)] > 0:
			msg = fmt.Sprintf("duplicate trust anchor (entries %d and %d)", seen[string(b.Bytes)]-1, i)
		}
		if msg != "" {
			errs = append(errs, field.Invalid(path, omitted, msg))
			continue
		}
		seen[string(b.Bytes)] = i + 1
	}
	if len(errs) == 0 && len(seen) == 0 {
		errs = append(errs, field.Invalid(path, omitted, "at least one trust anchor must be provided"))
	}
	return errs
}

// validateSignerName requires DOMAIN/PATH: a domain of at least two DNS
// labels, a path of DNS subdomains joined by dots.
func validateSignerName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	domain, rest, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(rest, "/") {
		return field.ErrorList{field.Invalid(path, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	var errs field.ErrorList
	if len(domain) > validation.DNS1123SubdomainMaxLength {
		errs = append(errs, field.TooLong(path, "", validation.DNS1123SubdomainMaxLength))
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if msgs := validation.IsDNS1123Label(l); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path, domain, fmt.Sprintf("validating label %q: %s", l, msgs[0])))
			break
		}
	}
	if len(labels) < 2 {
		errs = append(errs, field.Invalid(path, domain, "should be a domain with at least two segments separated by dots"))
	}
	for _, l := range strings.Split(rest, ".") {
		if msgs := validation.IsDNS1123Subdomain(l); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path, rest, fmt.Sprintf("validating label %q: %s", l, msgs[0])))
			break
		}
	}
	if max := 2*validation.DNS1123SubdomainMaxLength + validation.DNS1123LabelMaxLength + 2; len(name) > max {
		errs = append(errs, field.TooLong(path, "", max))
	}
	return errs
}

func newCSRResource() *Resource {
	r := &Resource{
		Name: "certificatesigningrequests", Singular: "certificatesigningrequest", Kind: "CertificateSigningRequest",
		Group: GroupCertificates, ShortNames: []string{"csr"}, HasStatus: true,
		New:     func() runtime.Object { return &certificatesv1.CertificateSigningRequest{} },
		NewList: func() runtime.Object { return &certificatesv1.CertificateSigningRequestList{} },
		PrepareForCreate: mutate(func(c *certificatesv1.CertificateSigningRequest) {
			// The requester's identity is the API server's to set
			// (SetRequester); a client's own is dropped.
			c.Spec.Username, c.Spec.UID, c.Spec.Groups, c.Spec.Extra = "", "", nil, nil
			c.Status = certificatesv1.CertificateSigningRequestStatus{}
		}),
		PrepareForUpdate: mutatePair(func(c, old *certificatesv1.CertificateSigningRequest) {
			c.Spec, c.Status = old.Spec, old.Status
		}),
		PrepareForStatusUpdate: mutatePair(func(c, old *certificatesv1.CertificateSigningRequest) {
			c.Spec = old.Spec
			keepConditions(c, old, certificatesv1.CertificateApproved)
			keepConditions(c, old, certificatesv1.CertificateDenied)
			stampConditions(c, old, metav1.Now())
		}),
		ValidateCreate: check(func(c *certificatesv1.CertificateSigningRequest) field.ErrorList {
			return validateCSR(c)
		}),
		ValidateUpdate: checkPair(func(c, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
			return validateCSRUpdate(c, old, false, false)
		}),
		ValidateStatusUpdate: checkPair(func(c, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
			return validateCSRUpdate(c, old, false, true)
		}),
		Approval: &Approval{
			PrepareForUpdate: mutatePair(func(c, old *certificatesv1.CertificateSigningRequest) {
				stampConditions(c, old, metav1.Now())
				conditions := c.Status.Conditions
				c.Spec, c.Status = old.Spec, old.Status
				c.Status.Conditions = conditions
			}),
			ValidateUpdate: checkPair(func(c, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
				return validateCSRUpdate(c, old, true, false)
			}),
		},
		FieldSet: selectable(func(c *certificatesv1.CertificateSigningRequest) fields.Set {
			return metaFields(&c.ObjectMeta, fields.Set{"spec.signerName": c.Spec.SignerName})
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			ageColumn(),
			column("SignerName", "string", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["signerName"], false),
			column("Requestor", "string", "Name of the user which made this request.", false),
			column("RequestedDuration", "string", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["expirationSeconds"], false),
			column("Condition", "string", certificatesv1.CertificateSigningRequestStatus{}.SwaggerDoc()["conditions"], false),
		},
		Row: printable(func(c *certificatesv1.CertificateSigningRequest, now time.Time) []interface{} {
			duration := "<none>"
			if c.Spec.ExpirationSeconds != nil {
				duration = (time.Duration(*c.Spec.ExpirationSeconds) * time.Second).String()
			}
			return []interface{}{c.Name, since(c.CreationTimestamp.Time, now), c.Spec.SignerName, c.Spec.Username, duration, csrCondition(c)}
		}),
	}
	notScalable(r)
	return r
}

// SetRequester records who asked for a new CSR in its spec, as the API
// server knows the caller.
func SetRequester(c *certificatesv1.CertificateSigningRequest, name, uid string, groups []string, extra map[string][]string) {
	c.Spec.Username, c.Spec.UID, c.Spec.Groups = name, uid, slices.Clone(groups)
	if len(extra) > 0 {
		c.Spec.Extra = make(map[string]certificatesv1.ExtraValue, len(extra))
		for k, v := range extra {
			c.Spec.Extra[k] = slices.Clone(v)
		}
	}
}

// csrCondition is the CONDITION column: the true approval and issue
// conditions, "Pending" without any.
func csrCondition(c *certificatesv1.CertificateSigningRequest) string {
	var out []string
	for _, cond := range c.Status.Conditions {
		if cond.Status == corev1.ConditionTrue || cond.Status == "" {
			out = append(out, string(cond.Type))
		}
	}
	if len(c.Status.Certificate) > 0 {
		out = append(out, "Issued")
	}
	if len(out) == 0 {
		return "Pending"
	}
	return strings.Join(out, ",")
}

// keepConditions puts old's conditions of type t back in c when c has as
// many of them: a status write cannot change an approval.
func keepConditions(c, old *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) {
	oldIdx, newIdx := conditionIndices(old, t), conditionIndices(c, t)
	if len(oldIdx) != len(newIdx) {
		return
	}
	for i, o := range oldIdx {
		c.Status.Conditions[newIdx[i]] = old.Status.Conditions[o]
	}
}

func conditionIndices(c *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []int {
	var out []int
	for i, cond := range c.Status.Conditions {
		if cond.Type == t {
			out = append(out, i)
		}
	}
	return out
}

// stampConditions fills the times a client left unset: lastUpdateTime
// now, lastTransitionTime that of old's same condition with the same
// status, else now.
func stampConditions(c, old *certificatesv1.CertificateSigningRequest, now metav1.Time) {
	for i := range c.Status.Conditions {
		cond := &c.Status.Conditions[i]
		if cond.LastUpdateTime.IsZero() {
			cond.LastUpdateTime = now
		}
		if !cond.LastTransitionTime.IsZero() {
			continue
		}
		cond.LastTransitionTime = now
		for _, o := range old.Status.Conditions {
			if o.Type == cond.Type && o.Status == cond.Status && !o.LastTransitionTime.IsZero() {
				cond.LastTransitionTime = o.LastTransitionTime
				break
			}
		}
	}
}

// keyUsages are the usages a CSR may ask for.
var keyUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
	certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
	certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
	certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
	certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
	certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
	certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
	certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
}

// legacyUnknownSigner is the signer of v1beta1 CSRs that named none; v1
// does not accept it.
const legacyUnknownSigner = "kubernetes.io/legacy-unknown"

func validateCSR(c *certificatesv1.CertificateSigningRequest) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, func(string, bool) []string { return nil })
	spec := specPath
	if err := checkCertificateRequest(c.Spec.Request); err != nil {
		errs = append(errs, field.Invalid(spec.Child("request"), "<request data>", err.Error()))
	}
	if len(c.Spec.Usages) == 0 {
		errs = append(errs, field.Required(spec.Child("usages"), ""))
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range c.Spec.Usages {
		switch {
		case !slices.Contains(keyUsages, u):
			errs = append(errs, field.NotSupported(spec.Child("usages").Index(i), u, keyUsages))
		case seen[u]:
			errs = append(errs, field.Duplicate(spec.Child("usages").Index(i), u))
		}
		seen[u] = true
	}
	if c.Spec.SignerName == legacyUnknownSigner {
		errs = append(errs, field.Invalid(spec.Child("signerName"), c.Spec.SignerName, "the legacy signerName is not allowed via this API version"))
	} else {
		errs = append(errs, validateSignerName(c.Spec.SignerName, spec.Child("signerName"))...)
	}
	if e := c.Spec.ExpirationSeconds; e != nil && *e < minCSRExpirationSeconds {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *e, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	errs = append(errs, validateCSRConditions(c.Status.Conditions, statusPath.Child("conditions"))...)
	if err := checkIssuedCertificate(c.Status.Certificate); err != nil {
		errs = append(errs, field.Invalid(statusPath.Child("certificate"), "<certificate data>", err.Error()))
	}
	return errs
}

// checkCertificateRequest requires one PEM CERTIFICATE REQUEST block
// holding a PKCS#10 request with a valid signature.
func checkCertificateRequest(data []byte) error {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return fmt.Errorf("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return err
	}
	return req.CheckSignature()
}

// checkIssuedCertificate accepts no certificate, or PEM CERTIFICATE
// blocks without headers that parse.
func checkIssuedCertificate(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	blocks := 0
	for rest := data; ; blocks++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("only CERTIFICATE PEM blocks are allowed, found %q", b.Type)
		}
		if len(b.Headers) != 0 {
			return fmt.Errorf("no PEM block headers are permitted")
		}
		if _, err := x509.ParseCertificates(b.Bytes); err != nil {
			return err
		}
	}
	if blocks == 0 {
		return fmt.Errorf("must contain at least one CERTIFICATE PEM block")
	}
	return nil
}

// trueOnlyConditions may only be True when present.
var trueOnlyConditions = []certificatesv1.RequestConditionType{
	certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed,
}

// validateCSRConditions requires a type and a status (True for the
// trueOnlyConditions) on each condition, every type at most once, and
// not both Approved and Denied.
func validateCSRConditions(conds []certificatesv1.CertificateSigningRequestCondition, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[certificatesv1.RequestConditionType]bool{}
	for i, c := range conds {
		if c.Type == "" {
			errs = append(errs, field.Required(path.Index(i).Child("type"), ""))
		}
		allowed := []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionUnknown}
		if slices.Contains(trueOnlyConditions, c.Type) {
			allowed = []corev1.ConditionStatus{corev1.ConditionTrue}
		}
		errs = append(errs, validateEnum(c.Status, path.Index(i).Child("status"), allowed...)...)
		if seen[c.Type] {
			errs = append(errs, field.Duplicate(path.Index(i).Child("type"), c.Type))
		}
		seen[c.Type] = true
	}
	if seen[certificatesv1.CertificateApproved] && seen[certificatesv1.CertificateDenied] {
		errs = append(errs, field.Invalid(path, certificatesv1.CertificateDenied, "Approved and Denied conditions are mutually exclusive"))
	}
	return errs
}

// validateCSRUpdate checks a write: approval says it may change the
// Approved and Denied conditions, status that it may set the certificate.
func validateCSRUpdate(c, old *certificatesv1.CertificateSigningRequest, approval, status bool) field.ErrorList {
	errs := append(validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta), validateCSR(c)...)
	cpath := statusPath.Child("conditions")
	for _, t := range trueOnlyConditions {
		if len(conditionIndices(c, t)) < len(conditionIndices(old, t)) {
			errs = append(errs, field.Forbidden(cpath, fmt.Sprintf("updates may not remove a condition of type %q", t)))
		}
	}
	if !approval {
		for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
			n, o := conditionsOf(c, t), conditionsOf(old, t)
			switch {
			case len(n) > len(o):
				errs = append(errs, field.Forbidden(cpath, fmt.Sprintf("updates may not add a condition of type %q", t)))
			case len(n) == len(o) && !apiequality.Semantic.DeepEqual(n, o):
				errs = append(errs, field.Forbidden(cpath, fmt.Sprintf("updates may not modify a condition of type %q", t)))
			}
		}
	}
	if !bytes.Equal(c.Status.Certificate, old.Status.Certificate) {
		cert := statusPath.Child("certificate")
		if !status {
			errs = append(errs, field.Forbidden(cert, "updates may not set certificate content"))
		} else if len(old.Status.Certificate) > 0 {
			errs = append(errs, field.Forbidden(cert, "updates may not modify existing certificate content"))
		}
	}
	return errs
}

func conditionsOf(c *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []certificatesv1.CertificateSigningRequestCondition {
	var out []certificatesv1.CertificateSigningRequestCondition
	for _, cond := range c.Status.Conditions {
		if cond.Type == t {
			out = append(out, cond)
		}
	}
	return out
}
