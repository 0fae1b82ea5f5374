package rbac

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/minik-dev/minik/server/auth"
)

// ruleAllows reports whether rule grants the request a.
func ruleAllows(rule *rbacv1.PolicyRule, a *auth.Attributes) bool {
	if !matchesAny(rule.Verbs, a.Verb) {
		return false
	}
	if !a.IsResourceRequest() {
		return urlMatches(rule.NonResourceURLs, a.Path)
	}
	return matchesAny(rule.APIGroups, a.APIGroup) &&
		resourceMatches(rule.Resources, a.Resource, a.Subresource) &&
		(len(rule.ResourceNames) == 0 || slices.Contains(rule.ResourceNames, a.Name))
}

// matchesAny reports whether list holds v or the wildcard "*".
func matchesAny(list []string, v string) bool {
	for _, it := range list {
		if it == v || it == rbacv1.VerbAll {
			return true
		}
	}
	return false
}

// resourceMatches reports whether one of the rule's resources names
// resource[/subresource]: "*" names every resource and subresource,
// "pods/log" one subresource, "*/scale" a subresource of every resource.
func resourceMatches(rules []string, resource, subresource string) bool {
	for _, r := range rules {
		switch {
		case r == rbacv1.ResourceAll:
			return true
		case subresource == "":
			if r == resource {
				return true
			}
		case len(r) == len(resource)+1+len(subresource) && r[len(resource)] == '/' &&
			strings.HasPrefix(r, resource) && strings.HasSuffix(r, subresource):
			return true
		case len(r) == len(subresource)+2 && strings.HasPrefix(r, "*/") && strings.HasSuffix(r, subresource):
			return true
		}
	}
	return false
}

// urlMatches reports whether one of urls names path: "*" names every
// path, "/apis/*" every path under /apis/.
func urlMatches(urls []string, path string) bool {
	for _, u := range urls {
		if u == rbacv1.NonResourceAll || u == path {
			return true
		}
		if prefix, ok := strings.CutSuffix(u, "*"); ok && strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// covers reports whether the rules owner holds grant everything rule
// grants, and if not, which parts of it they miss: the escalation check
// of Kubernetes, which breaks rule down to one verb, group, resource and
// name (or URL) at a time. A wildcard in rule is covered only by the same
// wildcard in owner.
func covers(owner []rbacv1.PolicyRule, rule rbacv1.PolicyRule) (missing []rbacv1.PolicyRule) {
	for _, sub := range breakdown(rule) {
		if !slices.ContainsFunc(owner, func(o rbacv1.PolicyRule) bool { return ruleCovers(&o, &sub) }) {
			missing = append(missing, sub)
		}
	}
	return missing
}

// breakdown splits rule into rules of one verb and one group, resource
// and resource name, or one verb and one URL.
func breakdown(rule rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, verb := range rule.Verbs {
		for _, url := range rule.NonResourceURLs {
			out = append(out, rbacv1.PolicyRule{Verbs: []string{verb}, NonResourceURLs: []string{url}})
		}
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				if len(rule.ResourceNames) == 0 {
					out = append(out, rbacv1.PolicyRule{Verbs: []string{verb}, APIGroups: []string{group}, Resources: []string{res}})
				}
				for _, name := range rule.ResourceNames {
					out = append(out, rbacv1.PolicyRule{Verbs: []string{verb}, APIGroups: []string{group}, Resources: []string{res}, ResourceNames: []string{name}})
				}
			}
		}
	}
	return out
}

// ruleCovers reports whether owner grants sub, a rule of breakdown.
func ruleCovers(owner, sub *rbacv1.PolicyRule) bool {
	if !matchesAny(owner.Verbs, sub.Verbs[0]) {
		return false
	}
	if len(sub.NonResourceURLs) > 0 {
		return urlMatches(owner.NonResourceURLs, sub.NonResourceURLs[0])
	}
	if !matchesAny(owner.APIGroups, sub.APIGroups[0]) {
		return false
	}
	res, subres, _ := strings.Cut(sub.Resources[0], "/")
	if !resourceMatches(owner.Resources, res, subres) && !slices.Contains(owner.Resources, sub.Resources[0]) {
		return false
	}
	if len(owner.ResourceNames) == 0 {
		return true
	}
	return len(sub.ResourceNames) == 1 && slices.Contains(owner.ResourceNames, sub.ResourceNames[0])
}

// formatRule prints a rule as Kubernetes' escalation errors do.
func formatRule(r rbacv1.PolicyRule) string {
	var parts []string
	add := func(name string, list []string) {
		if len(list) > 0 {
			parts = append(parts, fmt.Sprintf("%s:[%s]", name, quoteAll(list)))
		}
	}
	add("APIGroups", r.APIGroups)
	add("Resources", r.Resources)
	add("ResourceNames", r.ResourceNames)
	add("NonResourceURLs", r.NonResourceURLs)
	add("Verbs", r.Verbs)
	return "{" + strings.Join(parts, ", ") + "}"
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " ")
}
