package admission

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/minik-dev/minik/server/celexpr"
)

// exempt reports whether a's resource is never admitted by webhooks and
// policies: the configurations of admission control themselves.
func exempt(a *Attributes) bool {
	return a.Resource.Group == admissionregistrationv1.GroupName
}

// ruleMatches reports whether r covers a's operation, resource and scope.
func ruleMatches(r *admissionregistrationv1.RuleWithOperations, a *Attributes) bool {
	return operationMatches(r.Operations, a.Operation) &&
		oneMatches(r.APIGroups, a.Resource.Group) &&
		oneMatches(r.APIVersions, a.Resource.Version) &&
		resourceMatches(r.Resources, a.Resource.Resource, a.SubResource) &&
		scopeMatches(r.Scope, a.Namespaced)
}

func anyRuleMatches(rs []admissionregistrationv1.RuleWithOperations, a *Attributes) bool {
	for i := range rs {
		if ruleMatches(&rs[i], a) {
			return true
		}
	}
	return false
}

func operationMatches(ops []admissionregistrationv1.OperationType, op admissionv1.Operation) bool {
	for _, o := range ops {
		if o == admissionregistrationv1.OperationAll || string(o) == string(op) {
			return true
		}
	}
	return false
}

func oneMatches(vs []string, v string) bool {
	for _, x := range vs {
		if x == "*" || x == v {
			return true
		}
	}
	return false
}

// resourceMatches matches "RESOURCE[/SUBRESOURCE]" entries and their
// wildcards as Kubernetes does: "*" any resource (not a subresource),
// "*/*" anything, "R/*" R and any subresource of it, "*/S" subresource S
// of any resource.
func resourceMatches(rs []string, resource, sub string) bool {
	for _, r := range rs {
		res, s, _ := strings.Cut(r, "/")
		if (res == "*" || res == resource) && (s == "*" || s == sub) {
			return true
		}
	}
	return false
}

func scopeMatches(s *admissionregistrationv1.ScopeType, namespaced bool) bool {
	if s == nil {
		return true
	}
	switch *s {
	case admissionregistrationv1.ClusterScope:
		return !namespaced
	case admissionregistrationv1.NamespacedScope:
		return namespaced
	}
	return true
}

// NamespaceGetter reads namespaces, for namespaceSelectors and
// namespaceObject.
type NamespaceGetter interface {
	// Namespace returns the namespace name; ErrNotFound-style errors of
	// the caller's store pass through.
	Namespace(ctx context.Context, name string) (*corev1.Namespace, error)
}

// selectors are a compiled namespaceSelector and objectSelector; nil is
// the empty selector, which matches everything.
type selectors struct {
	namespace labels.Selector
	object    labels.Selector
}

func compileSelectors(ns, obj *metav1.LabelSelector) (selectors, error) {
	var s selectors
	var err error
	if ns != nil && (len(ns.MatchLabels) > 0 || len(ns.MatchExpressions) > 0) {
		if s.namespace, err = metav1.LabelSelectorAsSelector(ns); err != nil {
			return s, fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	if obj != nil && (len(obj.MatchLabels) > 0 || len(obj.MatchExpressions) > 0) {
		if s.object, err = metav1.LabelSelectorAsSelector(obj); err != nil {
			return s, fmt.Errorf("objectSelector: %w", err)
		}
	}
	return s, nil
}

// matches reports whether a's object (or old object) and namespace are
// selected; reading the namespace may fail.
func (s selectors) matches(ctx context.Context, a *Attributes, nsGetter NamespaceGetter) (bool, error) {
	if s.object != nil && !eitherMatches(s.object, a) {
		return false, nil
	}
	if s.namespace == nil {
		return true, nil
	}
	if a.Resource.Group == "" && a.Resource.Resource == "namespaces" && a.SubResource == "" {
		return eitherMatches(s.namespace, a), nil
	}
	if !a.Namespaced || a.Namespace == "" {
		return true, nil
	}
	ns, err := nsGetter.Namespace(ctx, a.Namespace)
	if err != nil {
		return false, fmt.Errorf("reading namespace %q: %w", a.Namespace, err)
	}
	return s.namespace.Matches(labels.Set(ns.Labels)), nil
}

// condition is a compiled matchCondition.
type condition struct {
	name string
	prg  *celexpr.Program
}

func compileConditions(mcs []admissionregistrationv1.MatchCondition, scope []string) ([]condition, error) {
	out := make([]condition, 0, len(mcs))
	for _, mc := range mcs {
		p, err := celexpr.Compile(mc.Expression, scope, nil)
		if err != nil {
			return nil, fmt.Errorf("matchCondition %q: %w", mc.Name, err)
		}
		out = append(out, condition{mc.Name, p})
	}
	return out, nil
}

// conditionsMatch reports whether every condition is true for vars; an
// evaluation error is returned (the caller applies its failurePolicy).
func conditionsMatch(ctx context.Context, cs []condition, vars map[string]any) (bool, error) {
	for _, c := range cs {
		ok, err := c.prg.Bool(ctx, vars)
		if err != nil {
			return false, fmt.Errorf("matchCondition %q: %w", c.name, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// eitherMatches reports whether sel selects a's object or its old object
// (of those the request has).
func eitherMatches(sel labels.Selector, a *Attributes) bool {
	return a.Object != nil && sel.Matches(labels.Set(labelsOf(a.Object))) ||
		a.OldObject != nil && sel.Matches(labels.Set(labelsOf(a.OldObject)))
}
