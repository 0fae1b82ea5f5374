package registry

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/google/cel-go/cel"

	"github.com/minik-dev/minik/server/celexpr"
)

// GroupAdmissionRegistration is the API group of the admission webhook
// configurations and the validating admission policies.
const GroupAdmissionRegistration = "admissionregistration.k8s.io"

// Limits on admission configurations, as in Kubernetes.
const (
	maxMatchConditions = 64
	minWebhookTimeout  = 1
	maxWebhookTimeout  = 30
)

var webhooksPath = field.NewPath("webhooks")

var (
	validatingWebhookConfigurationResource = newWebhookConfigurationResource(
		"validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
		func() runtime.Object { return &admissionregistrationv1.ValidatingWebhookConfiguration{} },
		func() runtime.Object { return &admissionregistrationv1.ValidatingWebhookConfigurationList{} },
		mutate(defaultValidatingWebhooks), check(validateValidatingWebhookConfiguration),
		func(obj runtime.Object) int {
			return len(obj.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks)
		})
	mutatingWebhookConfigurationResource = newWebhookConfigurationResource(
		"mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
		func() runtime.Object { return &admissionregistrationv1.MutatingWebhookConfiguration{} },
		func() runtime.Object { return &admissionregistrationv1.MutatingWebhookConfigurationList{} },
		mutate(defaultMutatingWebhooks), check(validateMutatingWebhookConfiguration),
		func(obj runtime.Object) int {
			return len(obj.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks)
		})
)

// newWebhookConfigurationResource declares one of the two webhook
// configuration kinds, which differ only in their webhooks' type.
func newWebhookConfigurationResource(name, kind string, newObj, newList func() runtime.Object,
	defaults func(runtime.Object), validate func(runtime.Object) field.ErrorList, count func(runtime.Object) int) *Resource {
	r := &Resource{
		Name:     name,
		Singular: strings.ToLower(kind),
		Kind:     kind,
		Group:    GroupAdmissionRegistration,

		New:     newObj,
		NewList: newList,

		PrepareForCreate: defaults,
		PrepareForUpdate: func(obj, old runtime.Object) {
			defaults(obj)
			m, om := metaOf(obj), metaOf(old)
			nextGeneration(m, om, webhooksOf(obj), webhooksOf(old))
		},
		PrepareForStatusUpdate: func(obj, old runtime.Object) {},

		ValidateCreate: validate,
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			errs := validateMetaUpdate(metaOf(obj), metaOf(old))
			return append(errs, validateWebhooksOnly(validate(obj))...)
		},
		ValidateStatusUpdate: func(obj, old runtime.Object) field.ErrorList { return nil },

		FieldSet: func(obj runtime.Object) fields.Set { return metaFields(metaOf(obj), nil) },
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Webhooks", "integer", "The number of webhooks of the configuration.", false),
			ageColumn(),
		},
		Row: func(obj runtime.Object) []interface{} {
			m := metaOf(obj)
			return []interface{}{m.Name, int64(count(obj)), since(m.CreationTimestamp.Time, time.Now())}
		},
	}
	notScalable(r)
	return r
}

// metaOf returns the metadata of an admission configuration object.
func metaOf(obj runtime.Object) *metav1.ObjectMeta {
	switch o := obj.(type) {
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		return &o.ObjectMeta
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		return &o.ObjectMeta
	case *admissionregistrationv1.ValidatingAdmissionPolicy:
		return &o.ObjectMeta
	case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
		return &o.ObjectMeta
	}
	panic(fmt.Sprintf("registry: no metadata for %T", obj))
}

func webhooksOf(obj runtime.Object) any {
	switch o := obj.(type) {
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		return o.Webhooks
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		return o.Webhooks
	}
	return nil
}

// validateWebhooksOnly drops the metadata errors of a create's validation
// from an update's, which checks metadata against the old object instead.
func validateWebhooksOnly(errs field.ErrorList) field.ErrorList {
	var out field.ErrorList
	for _, e := range errs {
		if !strings.HasPrefix(e.Field, "metadata") {
			out = append(out, e)
		}
	}
	return out
}

func defaultValidatingWebhooks(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		defaultWebhook(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, &w.ClientConfig, w.Rules)
	}
}

func defaultMutatingWebhooks(c *admissionregistrationv1.MutatingWebhookConfiguration) {
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		defaultWebhook(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, &w.ClientConfig, w.Rules)
		if w.ReinvocationPolicy == nil {
			p := admissionregistrationv1.NeverReinvocationPolicy
			w.ReinvocationPolicy = &p
		}
	}
}

// defaultWebhook applies Kubernetes' defaults to the fields both webhook
// types share.
func defaultWebhook(fp **admissionregistrationv1.FailurePolicyType, mp **admissionregistrationv1.MatchPolicyType,
	ns, obj **metav1.LabelSelector, timeout **int32, cc *admissionregistrationv1.WebhookClientConfig,
	rules []admissionregistrationv1.RuleWithOperations) {
	if *fp == nil {
		p := admissionregistrationv1.Fail
		*fp = &p
	}
	if *mp == nil {
		p := admissionregistrationv1.Equivalent
		*mp = &p
	}
	if *ns == nil {
		*ns = &metav1.LabelSelector{}
	}
	if *obj == nil {
		*obj = &metav1.LabelSelector{}
	}
	if *timeout == nil {
		t := int32(10)
		*timeout = &t
	}
	if cc.Service != nil && cc.Service.Port == nil {
		p := int32(443)
		cc.Service.Port = &p
	}
	defaultRules(rules)
}

func defaultRules(rules []admissionregistrationv1.RuleWithOperations) {
	for i := range rules {
		if rules[i].Scope == nil {
			s := admissionregistrationv1.AllScopes
			rules[i].Scope = &s
		}
	}
}

func validateValidatingWebhookConfiguration(c *admissionregistrationv1.ValidatingWebhookConfiguration) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	names := sets.New[string]()
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		p := webhooksPath.Index(i)
		errs = append(errs, validateWebhookName(w.Name, names, p.Child("name"))...)
		errs = append(errs, validateWebhook(webhookFields{
			rules: w.Rules, clientConfig: &w.ClientConfig, failurePolicy: w.FailurePolicy, matchPolicy: w.MatchPolicy,
			namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector, sideEffects: w.SideEffects,
			timeoutSeconds: w.TimeoutSeconds, reviewVersions: w.AdmissionReviewVersions, matchConditions: w.MatchConditions,
		}, p)...)
	}
	return errs
}

func validateMutatingWebhookConfiguration(c *admissionregistrationv1.MutatingWebhookConfiguration) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	names := sets.New[string]()
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		p := webhooksPath.Index(i)
		errs = append(errs, validateWebhookName(w.Name, names, p.Child("name"))...)
		errs = append(errs, validateWebhook(webhookFields{
			rules: w.Rules, clientConfig: &w.ClientConfig, failurePolicy: w.FailurePolicy, matchPolicy: w.MatchPolicy,
			namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector, sideEffects: w.SideEffects,
			timeoutSeconds: w.TimeoutSeconds, reviewVersions: w.AdmissionReviewVersions, matchConditions: w.MatchConditions,
		}, p)...)
		if w.ReinvocationPolicy != nil {
			errs = append(errs, validateEnum(*w.ReinvocationPolicy, p.Child("reinvocationPolicy"),
				admissionregistrationv1.NeverReinvocationPolicy, admissionregistrationv1.IfNeededReinvocationPolicy)...)
		}
	}
	return errs
}

// webhookFields are the fields the two webhook types share.
type webhookFields struct {
	rules             []admissionregistrationv1.RuleWithOperations
	clientConfig      *admissionregistrationv1.WebhookClientConfig
	failurePolicy     *admissionregistrationv1.FailurePolicyType
	matchPolicy       *admissionregistrationv1.MatchPolicyType
	namespaceSelector *metav1.LabelSelector
	objectSelector    *metav1.LabelSelector
	sideEffects       *admissionregistrationv1.SideEffectClass
	timeoutSeconds    *int32
	reviewVersions    []string
	matchConditions   []admissionregistrationv1.MatchCondition
}

// validateWebhookName requires a unique fully qualified name.
func validateWebhookName(name string, seen sets.Set[string], p *field.Path) field.ErrorList {
	errs := validation.IsFullyQualifiedName(p, name)
	if seen.Has(name) {
		errs = append(errs, field.Duplicate(p, name))
	}
	seen.Insert(name)
	return errs
}

func validateWebhook(w webhookFields, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range w.rules {
		errs = append(errs, validateRuleWithOperations(&w.rules[i], p.Child("rules").Index(i))...)
	}
	if w.failurePolicy != nil {
		errs = append(errs, validateEnum(*w.failurePolicy, p.Child("failurePolicy"), admissionregistrationv1.Ignore, admissionregistrationv1.Fail)...)
	}
	if w.matchPolicy != nil {
		errs = append(errs, validateEnum(*w.matchPolicy, p.Child("matchPolicy"), admissionregistrationv1.Exact, admissionregistrationv1.Equivalent)...)
	}
	if w.sideEffects == nil {
		errs = append(errs, field.Required(p.Child("sideEffects"), "must specify one of None, NoneOnDryRun"))
	} else {
		errs = append(errs, validateEnum(*w.sideEffects, p.Child("sideEffects"), admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun)...)
	}
	if t := w.timeoutSeconds; t != nil && (*t < minWebhookTimeout || *t > maxWebhookTimeout) {
		errs = append(errs, field.Invalid(p.Child("timeoutSeconds"), *t, "the timeout value must be between 1 and 30 seconds"))
	}
	opts := metavalidation.LabelSelectorValidationOptions{}
	if w.namespaceSelector != nil {
		errs = append(errs, metavalidation.ValidateLabelSelector(w.namespaceSelector, opts, p.Child("namespaceSelector"))...)
	}
	if w.objectSelector != nil {
		errs = append(errs, metavalidation.ValidateLabelSelector(w.objectSelector, opts, p.Child("objectSelector"))...)
	}
	errs = append(errs, validateReviewVersions(w.reviewVersions, p.Child("admissionReviewVersions"))...)
	errs = append(errs, validateClientConfig(w.clientConfig, p.Child("clientConfig"))...)
	return append(errs, validateMatchConditions(w.matchConditions, celexpr.WebhookScope, p.Child("matchConditions"))...)
}

// validateReviewVersions requires the AdmissionReview versions a webhook
// accepts to include one the server sends (v1 or v1beta1), once each.
func validateReviewVersions(vs []string, p *field.Path) field.ErrorList {
	if len(vs) == 0 {
		return field.ErrorList{field.Required(p, "must specify one of v1, v1beta1")}
	}
	var errs field.ErrorList
	seen := sets.New[string]()
	known := false
	for i, v := range vs {
		for _, msg := range validation.IsDNS1035Label(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, msg))
		}
		if seen.Has(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, "duplicate version"))
		}
		seen.Insert(v)
		known = known || v == "v1" || v == "v1beta1"
	}
	if !known {
		errs = append(errs, field.Invalid(p, vs, "must include at least one of v1, v1beta1"))
	}
	return errs
}

// validateClientConfig requires exactly one of url and service, an https
// URL without user, query or fragment, and a caBundle of PEM certificates.
func validateClientConfig(cc *admissionregistrationv1.WebhookClientConfig, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case cc.URL == nil && cc.Service == nil:
		errs = append(errs, field.Required(p, "exactly one of url or service is required"))
	case cc.URL != nil && cc.Service != nil:
		errs = append(errs, field.Invalid(p, "", "exactly one of url or service is required"))
	case cc.URL != nil:
		errs = append(errs, validateWebhookURL(*cc.URL, p.Child("url"))...)
	default:
		errs = append(errs, validateWebhookService(cc.Service, p.Child("service"))...)
	}
	if len(cc.CABundle) > 0 && !hasCertificate(cc.CABundle) {
		errs = append(errs, field.Invalid(p.Child("caBundle"), "<bytes>", "must hold PEM-encoded certificates"))
	}
	return errs
}

func validateWebhookURL(s string, p *field.Path) field.ErrorList {
	u, err := url.Parse(s)
	if err != nil {
		return field.ErrorList{field.Invalid(p, s, "host must be specified: "+err.Error())}
	}
	var errs field.ErrorList
	if u.Scheme != "https" {
		errs = append(errs, field.Invalid(p, s, "'https' is the only allowed URL scheme"))
	}
	if u.Host == "" {
		errs = append(errs, field.Invalid(p, s, "host must be specified"))
	}
	if u.User != nil {
		errs = append(errs, field.Invalid(p, s, "user information is not permitted in the URL"))
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		errs = append(errs, field.Invalid(p, s, "fragments are not permitted in the URL"))
	}
	if u.RawQuery != "" || strings.Contains(s, "?") {
		errs = append(errs, field.Invalid(p, s, "query parameters are not permitted in the URL"))
	}
	return errs
}

func validateWebhookService(s *admissionregistrationv1.ServiceReference, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "service name is required"))
	} else {
		errs = append(errs, validateDNSLabel(s.Name, p.Child("name"))...)
	}
	if s.Namespace == "" {
		errs = append(errs, field.Required(p.Child("namespace"), "service namespace is required"))
	} else {
		errs = append(errs, validateDNSLabel(s.Namespace, p.Child("namespace"))...)
	}
	if s.Path != nil && *s.Path != "" && !strings.HasPrefix(*s.Path, "/") {
		errs = append(errs, field.Invalid(p.Child("path"), *s.Path, "must start with a '/'"))
	}
	if s.Port != nil && (*s.Port < 1 || *s.Port > 65535) {
		errs = append(errs, field.Invalid(p.Child("port"), *s.Port, "port is not valid: must be between 1 and 65535, inclusive"))
	}
	return errs
}

// hasCertificate reports whether b holds at least one PEM certificate and
// nothing that fails to parse as one.
func hasCertificate(b []byte) bool {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return n > 0 && len(strings.TrimSpace(string(b))) == 0
		}
		if block.Type != "CERTIFICATE" {
			return false
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return false
		}
		n++
	}
}

var operations = []admissionregistrationv1.OperationType{
	admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete, admissionregistrationv1.Connect,
}

func validateRuleWithOperations(r *admissionregistrationv1.RuleWithOperations, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(r.Operations) == 0 {
		errs = append(errs, field.Required(p.Child("operations"), ""))
	}
	if len(r.Operations) > 1 && hasWildcard(r.Operations) {
		errs = append(errs, field.Invalid(p.Child("operations"), r.Operations, "if '*' is present, must not specify other operations"))
	}
	for i, op := range r.Operations {
		if op != admissionregistrationv1.OperationAll {
			errs = append(errs, validateEnum(op, p.Child("operations").Index(i), operations...)...)
		}
	}
	return append(errs, validateRule(&r.Rule, p)...)
}

// validateRule checks the groups, versions, resources and scope a rule
// matches, as Kubernetes does.
func validateRule(r *admissionregistrationv1.Rule, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(r.APIGroups) == 0 {
		errs = append(errs, field.Required(p.Child("apiGroups"), ""))
	}
	if len(r.APIGroups) > 1 && hasWildcard(r.APIGroups) {
		errs = append(errs, field.Invalid(p.Child("apiGroups"), r.APIGroups, "if '*' is present, must not specify other API groups"))
	}
	if len(r.APIVersions) == 0 {
		errs = append(errs, field.Required(p.Child("apiVersions"), ""))
	}
	if len(r.APIVersions) > 1 && hasWildcard(r.APIVersions) {
		errs = append(errs, field.Invalid(p.Child("apiVersions"), r.APIVersions, "if '*' is present, must not specify other API versions"))
	}
	for i, v := range r.APIVersions {
		if v == "" {
			errs = append(errs, field.Required(p.Child("apiVersions").Index(i), ""))
		}
	}
	errs = append(errs, validateRuleResources(r.Resources, p.Child("resources"))...)
	if r.Scope != nil {
		errs = append(errs, validateEnum(*r.Scope, p.Child("scope"),
			admissionregistrationv1.ClusterScope, admissionregistrationv1.NamespacedScope, admissionregistrationv1.AllScopes)...)
	}
	return errs
}

// validateRuleResources checks "RESOURCE[/SUBRESOURCE]" entries with
// their wildcards: "*/*" alone; "*" only with entries that name a
// subresource; "R/*" not with "R/S"; "*/S" not with "R/S".
func validateRuleResources(rs []string, p *field.Path) field.ErrorList {
	if len(rs) == 0 {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	all := sets.New(rs...)
	if all.Has("*/*") && len(rs) > 1 {
		errs = append(errs, field.Invalid(p, rs, "if '*/*' is present, must not specify other resources"))
	}
	for i, r := range rs {
		if r == "" {
			errs = append(errs, field.Required(p.Index(i), ""))
			continue
		}
		res, sub, hasSub := strings.Cut(r, "/")
		if res == "" || (hasSub && (sub == "" || strings.Contains(sub, "/"))) {
			errs = append(errs, field.Invalid(p.Index(i), r, "must be RESOURCE or RESOURCE/SUBRESOURCE"))
			continue
		}
		switch {
		case !hasSub && res != "*" && all.Has("*"):
			errs = append(errs, field.Invalid(p.Index(i), r, "if '*' is present, must not specify other resources without subresources"))
		case hasSub && sub != "*" && all.Has(res+"/*"):
			errs = append(errs, field.Invalid(p.Index(i), r, fmt.Sprintf("if '%s/*' is present, must not specify %s", res, r)))
		case hasSub && res != "*" && all.Has("*/"+sub):
			errs = append(errs, field.Invalid(p.Index(i), r, fmt.Sprintf("if '*/%s' is present, must not specify %s", sub, r)))
		}
	}
	return errs
}

func hasWildcard[T ~string](vs []T) bool {
	for _, v := range vs {
		if v == "*" {
			return true
		}
	}
	return false
}

// validateMatchConditions requires unique qualified names and boolean
// CEL expressions over the variables of scope.
func validateMatchConditions(mcs []admissionregistrationv1.MatchCondition, scope []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(mcs) > maxMatchConditions {
		errs = append(errs, field.TooMany(p, len(mcs), maxMatchConditions))
	}
	names := sets.New[string]()
	for i, mc := range mcs {
		ip := p.Index(i)
		if mc.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else {
			errs = append(errs, messages(ip.Child("name"), mc.Name, validation.IsQualifiedName(mc.Name))...)
			if names.Has(mc.Name) {
				errs = append(errs, field.Duplicate(ip.Child("name"), mc.Name))
			}
			names.Insert(mc.Name)
		}
		errs = append(errs, validateExpression(mc.Expression, scope, cel.BoolType, ip.Child("expression"))...)
	}
	return errs
}

// validateExpression requires a CEL expression that compiles over scope
// to a result of type want (nil: any).
func validateExpression(expr string, scope []string, want *cel.Type, p *field.Path) field.ErrorList {
	if strings.TrimSpace(expr) == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if _, err := celexpr.Compile(expr, scope, want); err != nil {
		return field.ErrorList{field.Invalid(p, expr, err.Error())}
	}
	return nil
}
