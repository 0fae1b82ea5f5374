package registry

import (
	"fmt"
	"slices"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/util/shufflesharding"
)

// GroupFlowControl is the API group of API Priority and Fairness:
// FlowSchemas and PriorityLevelConfigurations. minik keeps these objects,
// with Kubernetes' defaults and validation, but does no priority and
// fairness queuing: every request is served as it comes.
const GroupFlowControl = "flowcontrol.apiserver.k8s.io"

// Defaults and limits of the flow control kinds, as in Kubernetes.
const (
	defaultMatchingPrecedence = 1000
	maxMatchingPrecedence     = 10000
	defaultNominalConcurrency = 30
	defaultQueues             = 64
	defaultHandSize           = 8
	defaultQueueLengthLimit   = 50
	maxPriorityLevelQueues    = 10 * 1000 * 1000
	exemptPriorityLevel       = flowcontrolv1.PriorityLevelConfigurationNameExempt
	maxPercent                = 100
)

var (
	flowSchemaResource    = newFlowSchemaResource()
	priorityLevelResource = newPriorityLevelResource()
)

func newFlowSchemaResource() *Resource {
	r := &Resource{
		Name: "flowschemas", Singular: "flowschema", Kind: "FlowSchema", Group: GroupFlowControl,
		HasStatus: true,
		New:       func() runtime.Object { return &flowcontrolv1.FlowSchema{} },
		NewList:   func() runtime.Object { return &flowcontrolv1.FlowSchemaList{} },

		PrepareForCreate: mutate(func(fs *flowcontrolv1.FlowSchema) {
			fs.Status = flowcontrolv1.FlowSchemaStatus{}
			defaultFlowSchema(fs)
		}),
		PrepareForUpdate: mutatePair(func(fs, old *flowcontrolv1.FlowSchema) {
			fs.Status = old.Status
			defaultFlowSchema(fs)
			nextGeneration(&fs.ObjectMeta, &old.ObjectMeta, fs.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(fs, old *flowcontrolv1.FlowSchema) {
			fs.Spec = old.Spec
			fs.Generation = old.Generation
		}),

		ValidateCreate: check(validateFlowSchema),
		ValidateUpdate: checkPair(func(fs, old *flowcontrolv1.FlowSchema) field.ErrorList {
			return append(validateMetaUpdate(&fs.ObjectMeta, &old.ObjectMeta), validateFlowSchema(fs)...)
		}),
		ValidateStatusUpdate: checkPair(func(fs, old *flowcontrolv1.FlowSchema) field.ErrorList {
			errs := validateMetaUpdate(&fs.ObjectMeta, &old.ObjectMeta)
			for i, c := range fs.Status.Conditions {
				if c.Type == "" {
					errs = append(errs, field.Required(field.NewPath("status", "conditions").Index(i).Child("type"), ""))
				}
			}
			return errs
		}),

		FieldSet: selectable(func(fs *flowcontrolv1.FlowSchema) fields.Set { return metaFields(&fs.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("PriorityLevel", "string", flowcontrolv1.FlowSchemaSpec{}.SwaggerDoc()["priorityLevelConfiguration"], false),
			column("MatchingPrecedence", "string", flowcontrolv1.FlowSchemaSpec{}.SwaggerDoc()["matchingPrecedence"], false),
			column("DistinguisherMethod", "string", flowcontrolv1.FlowSchemaSpec{}.SwaggerDoc()["distinguisherMethod"], false),
			ageColumn(),
			column("MissingPL", "string", "references a broken or non-existent PriorityLevelConfiguration", false),
		},
		Row: printable(func(fs *flowcontrolv1.FlowSchema, now time.Time) []interface{} {
			method := none
			if fs.Spec.DistinguisherMethod != nil {
				method = string(fs.Spec.DistinguisherMethod.Type)
			}
			missing := unknown
			for _, c := range fs.Status.Conditions {
				if c.Type == flowcontrolv1.FlowSchemaConditionDangling {
					missing = string(c.Status)
				}
			}
			return []interface{}{fs.Name, fs.Spec.PriorityLevelConfiguration.Name, fmt.Sprint(fs.Spec.MatchingPrecedence),
				method, since(fs.CreationTimestamp.Time, now), missing}
		}),
	}
	notScalable(r)
	return r
}

func defaultFlowSchema(fs *flowcontrolv1.FlowSchema) {
	if fs.Spec.MatchingPrecedence == 0 {
		fs.Spec.MatchingPrecedence = defaultMatchingPrecedence
	}
}

// validateFlowSchema checks a FlowSchema as Kubernetes does.
func validateFlowSchema(fs *flowcontrolv1.FlowSchema) field.ErrorList {
	errs := validateMeta(&fs.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	spec := field.NewPath("spec")
	prec := spec.Child("matchingPrecedence")
	switch p := fs.Spec.MatchingPrecedence; {
	case p <= 0:
		errs = append(errs, field.Invalid(prec, p, "must be a positive value"))
	case p > maxMatchingPrecedence:
		errs = append(errs, field.Invalid(prec, p, fmt.Sprintf("must not be greater than %d", maxMatchingPrecedence)))
	case p == 1 && fs.Name != flowcontrolv1.FlowSchemaNameExempt:
		errs = append(errs, field.Invalid(prec, p, "only the schema named 'exempt' may have matchingPrecedence 1"))
	}
	if d := fs.Spec.DistinguisherMethod; d != nil {
		errs = append(errs, validateEnum(d.Type, spec.Child("distinguisherMethod", "type"),
			flowcontrolv1.FlowDistinguisherMethodByUserType, flowcontrolv1.FlowDistinguisherMethodByNamespaceType)...)
	}
	plName := spec.Child("priorityLevelConfiguration", "name")
	if n := fs.Spec.PriorityLevelConfiguration.Name; n == "" {
		errs = append(errs, field.Required(plName, "must reference a priority level"))
	} else {
		for _, msg := range path.ValidatePathSegmentName(n, false) {
			errs = append(errs, field.Invalid(plName, n, msg))
		}
	}
	for i, rule := range fs.Spec.Rules {
		errs = append(errs, validatePolicyRulesWithSubjects(rule, spec.Child("rules").Index(i))...)
	}
	return errs
}

func validatePolicyRulesWithSubjects(rule flowcontrolv1.PolicyRulesWithSubjects, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(rule.Subjects) == 0 {
		errs = append(errs, field.Required(p.Child("subjects"), "subjects must contain at least one value"))
	}
	for i, s := range rule.Subjects {
		errs = append(errs, validateFlowSubject(s, p.Child("subjects").Index(i))...)
	}
	if len(rule.ResourceRules) == 0 && len(rule.NonResourceRules) == 0 {
		errs = append(errs, field.Required(p, "at least one of resourceRules and nonResourceRules has to be non-empty"))
	}
	for i, r := range rule.ResourceRules {
		errs = append(errs, validateFlowResourceRule(r, p.Child("resourceRules").Index(i))...)
	}
	for i, r := range rule.NonResourceRules {
		rp := p.Child("nonResourceRules").Index(i)
		errs = append(errs, validateFlowVerbs(r.Verbs, rp.Child("verbs"))...)
		errs = append(errs, validateAllOrList(r.NonResourceURLs, rp.Child("nonResourceURLs"), "nonResourceURLs must contain at least one value")...)
	}
	return errs
}

// validateFlowSubject requires the member named by the subject's kind,
// and only it.
func validateFlowSubject(s flowcontrolv1.Subject, p *field.Path) field.ErrorList {
	errs := validateEnum(s.Kind, p.Child("kind"),
		flowcontrolv1.SubjectKindUser, flowcontrolv1.SubjectKindGroup, flowcontrolv1.SubjectKindServiceAccount)
	members := map[flowcontrolv1.SubjectKind]string{
		flowcontrolv1.SubjectKindUser: "user", flowcontrolv1.SubjectKindGroup: "group", flowcontrolv1.SubjectKindServiceAccount: "serviceAccount",
	}
	for _, name := range setMembers(&s) {
		if members[s.Kind] != name {
			errs = append(errs, field.Forbidden(p.Child(name), fmt.Sprintf("%s is forbidden when subject kind is not '%s'", name, kindOfMember(members, name))))
		}
	}
	switch s.Kind {
	case flowcontrolv1.SubjectKindUser:
		if s.User == nil {
			errs = append(errs, field.Required(p.Child("user"), "user is required when subject kind is 'User'"))
		} else if s.User.Name == "" {
			errs = append(errs, field.Required(p.Child("user", "name"), ""))
		}
	case flowcontrolv1.SubjectKindGroup:
		if s.Group == nil {
			errs = append(errs, field.Required(p.Child("group"), "group is required when subject kind is 'Group'"))
		} else if s.Group.Name == "" {
			errs = append(errs, field.Required(p.Child("group", "name"), ""))
		}
	case flowcontrolv1.SubjectKindServiceAccount:
		sp := p.Child("serviceAccount")
		switch sa := s.ServiceAccount; {
		case sa == nil:
			errs = append(errs, field.Required(sp, "serviceAccount is required when subject kind is 'ServiceAccount'"))
		default:
			if sa.Name == "" {
				errs = append(errs, field.Required(sp.Child("name"), ""))
			} else if sa.Name != flowcontrolv1.NameAll {
				for _, msg := range apivalidation.ValidateServiceAccountName(sa.Name, false) {
					errs = append(errs, field.Invalid(sp.Child("name"), sa.Name, msg))
				}
			}
			if sa.Namespace == "" {
				errs = append(errs, field.Required(sp.Child("namespace"), "must specify namespace for service account"))
			} else {
				for _, msg := range apivalidation.ValidateNamespaceName(sa.Namespace, false) {
					errs = append(errs, field.Invalid(sp.Child("namespace"), sa.Namespace, msg))
				}
			}
		}
	}
	return errs
}

func kindOfMember(members map[flowcontrolv1.SubjectKind]string, name string) flowcontrolv1.SubjectKind {
	for k, m := range members {
		if m == name {
			return k
		}
	}
	return ""
}

func validateFlowResourceRule(r flowcontrolv1.ResourcePolicyRule, p *field.Path) field.ErrorList {
	errs := validateFlowVerbs(r.Verbs, p.Child("verbs"))
	errs = append(errs, validateAllOrList(r.APIGroups, p.Child("apiGroups"), "resource rules must supply at least one api group")...)
	errs = append(errs, validateAllOrList(r.Resources, p.Child("resources"), "resource rules must supply at least one resource")...)
	if len(r.Namespaces) == 0 {
		if !r.ClusterScope {
			errs = append(errs, field.Required(p.Child("namespaces"), "resource rules that are not cluster scoped must supply at least one namespace"))
		}
		return errs
	}
	errs = append(errs, validateAllOrList(r.Namespaces, p.Child("namespaces"), "")...)
	for i, ns := range r.Namespaces {
		if ns == flowcontrolv1.NamespaceEvery {
			continue
		}
		for _, msg := range apivalidation.ValidateNamespaceName(ns, false) {
			errs = append(errs, field.Invalid(p.Child("namespaces").Index(i), ns, "each member of this list must be '*' or a DNS-1123 label; "+msg))
		}
	}
	return errs
}

// flowVerbs are the verbs a flow control rule may name besides "*".
var flowVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "proxy", "update", "watch"}

func validateFlowVerbs(verbs []string, p *field.Path) field.ErrorList {
	errs := validateAllOrList(verbs, p, "verbs must contain at least one value")
	if len(errs) > 0 || slices.Contains(verbs, flowcontrolv1.VerbAll) {
		return errs
	}
	for _, v := range verbs {
		if !slices.Contains(flowVerbs, v) {
			return append(errs, field.NotSupported(p, verbs, flowVerbs))
		}
	}
	return nil
}

// validateAllOrList requires a non-empty list in which "*", if present,
// is the only member.
func validateAllOrList(list []string, p *field.Path, emptyMsg string) field.ErrorList {
	if len(list) == 0 {
		return field.ErrorList{field.Required(p, emptyMsg)}
	}
	if len(list) > 1 && slices.Contains(list, "*") {
		return field.ErrorList{field.Invalid(p, list, "if '*' is present, must not specify other values")}
	}
	return nil
}

func newPriorityLevelResource() *Resource {
	r := &Resource{
		Name: "prioritylevelconfigurations", Singular: "prioritylevelconfiguration", Kind: "PriorityLevelConfiguration",
		Group: GroupFlowControl, HasStatus: true,
		New:     func() runtime.Object { return &flowcontrolv1.PriorityLevelConfiguration{} },
		NewList: func() runtime.Object { return &flowcontrolv1.PriorityLevelConfigurationList{} },

		PrepareForCreate: mutate(func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Status = flowcontrolv1.PriorityLevelConfigurationStatus{}
			defaultPriorityLevel(pl)
		}),
		PrepareForUpdate: mutatePair(func(pl, old *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Status = old.Status
			defaultPriorityLevel(pl)
			nextGeneration(&pl.ObjectMeta, &old.ObjectMeta, pl.Spec, old.Spec)
		}),
		PrepareForStatusUpdate: mutatePair(func(pl, old *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec = old.Spec
			pl.Generation = old.Generation
		}),

		ValidateCreate: check(validatePriorityLevel),
		ValidateUpdate: checkPair(func(pl, old *flowcontrolv1.PriorityLevelConfiguration) field.ErrorList {
			return append(validateMetaUpdate(&pl.ObjectMeta, &old.ObjectMeta), validatePriorityLevel(pl)...)
		}),
		ValidateStatusUpdate: checkPair(func(pl, old *flowcontrolv1.PriorityLevelConfiguration) field.ErrorList {
			errs := validateMetaUpdate(&pl.ObjectMeta, &old.ObjectMeta)
			for i, c := range pl.Status.Conditions {
				if c.Type == "" {
					errs = append(errs, field.Required(field.NewPath("status", "conditions").Index(i).Child("type"), ""))
				}
			}
			return errs
		}),

		FieldSet: selectable(func(pl *flowcontrolv1.PriorityLevelConfiguration) fields.Set { return metaFields(&pl.ObjectMeta, nil) }),
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Type", "string", flowcontrolv1.PriorityLevelConfigurationSpec{}.SwaggerDoc()["type"], false),
			column("NominalConcurrencyShares", "string", flowcontrolv1.LimitedPriorityLevelConfiguration{}.SwaggerDoc()["nominalConcurrencyShares"], false),
			column("Queues", "string", flowcontrolv1.QueuingConfiguration{}.SwaggerDoc()["queues"], false),
			column("HandSize", "string", flowcontrolv1.QueuingConfiguration{}.SwaggerDoc()["handSize"], false),
			column("QueueLengthLimit", "string", flowcontrolv1.QueuingConfiguration{}.SwaggerDoc()["queueLengthLimit"], false),
			ageColumn(),
		},
		Row: printable(func(pl *flowcontrolv1.PriorityLevelConfiguration, now time.Time) []interface{} {
			shares, queues, hand, limit := none, none, none, none
			if l := pl.Spec.Limited; l != nil {
				shares = fmt.Sprint(ptrOr(l.NominalConcurrencyShares, 0))
				if q := l.LimitResponse.Queuing; q != nil {
					queues, hand, limit = fmt.Sprint(q.Queues), fmt.Sprint(q.HandSize), fmt.Sprint(q.QueueLengthLimit)
				}
			}
			return []interface{}{pl.Name, string(pl.Spec.Type), shares, queues, hand, limit, since(pl.CreationTimestamp.Time, now)}
		}),
	}
	notScalable(r)
	return r
}

// defaultPriorityLevel applies Kubernetes' v1 defaults: 30 nominal
// shares of a limited level, no lending, and 64 queues of 50 with hands
// of 8 for a level that queues.
func defaultPriorityLevel(pl *flowcontrolv1.PriorityLevelConfiguration) {
	if l := pl.Spec.Limited; l != nil {
		if l.NominalConcurrencyShares == nil {
			l.NominalConcurrencyShares = ptrTo(int32(defaultNominalConcurrency))
		}
		if l.LendablePercent == nil {
			l.LendablePercent = ptrTo(int32(0))
		}
		if q := l.LimitResponse.Queuing; q != nil {
			if q.Queues == 0 {
				q.Queues = defaultQueues
			}
			if q.HandSize == 0 {
				q.HandSize = defaultHandSize
			}
			if q.QueueLengthLimit == 0 {
				q.QueueLengthLimit = defaultQueueLengthLimit
			}
		}
	}
	if e := pl.Spec.Exempt; e != nil {
		if e.NominalConcurrencyShares == nil {
			e.NominalConcurrencyShares = ptrTo(int32(0))
		}
		if e.LendablePercent == nil {
			e.LendablePercent = ptrTo(int32(0))
		}
	}
}

// validatePriorityLevel checks a PriorityLevelConfiguration as
// Kubernetes does: the type Exempt exactly for the level named exempt,
// the member of the type set, and sane shares, percentages and queues.
func validatePriorityLevel(pl *flowcontrolv1.PriorityLevelConfiguration) field.ErrorList {
	errs := validateMeta(&pl.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	spec := field.NewPath("spec")
	t := pl.Spec.Type
	if (pl.Name == exemptPriorityLevel) != (t == flowcontrolv1.PriorityLevelEnablementExempt) {
		errs = append(errs, field.Invalid(spec.Child("type"), t, "must be 'Exempt' if and only if `name` is 'exempt'"))
	}
	switch t {
	case flowcontrolv1.PriorityLevelEnablementExempt:
		if pl.Spec.Limited != nil {
			errs = append(errs, field.Forbidden(spec.Child("limited"), "must be nil if the type is not Limited"))
		}
		if e := pl.Spec.Exempt; e != nil {
			errs = append(errs, validateShares(e.NominalConcurrencyShares, e.LendablePercent, spec.Child("exempt"))...)
		}
	case flowcontrolv1.PriorityLevelEnablementLimited:
		if pl.Spec.Exempt != nil {
			errs = append(errs, field.Forbidden(spec.Child("exempt"), "must be nil if the type is Limited"))
		}
		l := pl.Spec.Limited
		if l == nil {
			errs = append(errs, field.Required(spec.Child("limited"), "must not be empty when type is Limited"))
			break
		}
		lp := spec.Child("limited")
		errs = append(errs, validateShares(l.NominalConcurrencyShares, l.LendablePercent, lp)...)
		if b := l.BorrowingLimitPercent; b != nil && *b < 0 {
			errs = append(errs, field.Invalid(lp.Child("borrowingLimitPercent"), *b, "if specified, must be a non-negative integer"))
		}
		errs = append(errs, validateLimitResponse(l.LimitResponse, lp.Child("limitResponse"))...)
	default:
		errs = append(errs, validateEnum(t, spec.Child("type"),
			flowcontrolv1.PriorityLevelEnablementExempt, flowcontrolv1.PriorityLevelEnablementLimited)...)
	}
	return errs
}

func validateShares(shares, lendable *int32, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if shares != nil && *shares < 0 {
		errs = append(errs, field.Invalid(p.Child("nominalConcurrencyShares"), *shares, "must be a non-negative integer"))
	}
	if lendable != nil && (*lendable < 0 || *lendable > maxPercent) {
		errs = append(errs, field.Invalid(p.Child("lendablePercent"), *lendable, "must be between 0 and 100, inclusive"))
	}
	return errs
}

func validateLimitResponse(lr flowcontrolv1.LimitResponse, p *field.Path) field.ErrorList {
	errs := validateEnum(lr.Type, p.Child("type"), flowcontrolv1.LimitResponseTypeQueue, flowcontrolv1.LimitResponseTypeReject)
	q := lr.Queuing
	switch {
	case lr.Type != flowcontrolv1.LimitResponseTypeQueue && q != nil:
		return append(errs, field.Forbidden(p.Child("queuing"), "must be nil if limited.limitResponse.type is not Queue"))
	case lr.Type == flowcontrolv1.LimitResponseTypeQueue && q == nil:
		return append(errs, field.Required(p.Child("queuing"), "must not be empty if limited.limitResponse.type is Queue"))
	case q == nil:
		return errs
	}
	qp := p.Child("queuing")
	if q.QueueLengthLimit <= 0 {
		errs = append(errs, field.Invalid(qp.Child("queueLengthLimit"), q.QueueLengthLimit, "must be positive"))
	}
	switch {
	case q.Queues <= 0:
		errs = append(errs, field.Invalid(qp.Child("queues"), q.Queues, "must be positive"))
	case q.Queues > maxPriorityLevelQueues:
		errs = append(errs, field.Invalid(qp.Child("queues"), q.Queues, fmt.Sprintf("must not be greater than %d", maxPriorityLevelQueues)))
	}
	switch {
	case q.HandSize <= 0:
		errs = append(errs, field.Invalid(qp.Child("handSize"), q.HandSize, "must be positive"))
	case q.HandSize > q.Queues:
		errs = append(errs, field.Invalid(qp.Child("handSize"), q.HandSize, fmt.Sprintf("should not be greater than queues (%d)", q.Queues)))
	case shufflesharding.RequiredEntropyBits(int(q.Queues), int(q.HandSize)) > shufflesharding.MaxHashBits:
		errs = append(errs, field.Invalid(qp.Child("handSize"), q.HandSize,
			fmt.Sprintf("required entropy bits of deckSize %d and handSize %d should not be greater than %d", q.Queues, q.HandSize, shufflesharding.MaxHashBits)))
	}
	return errs
}
