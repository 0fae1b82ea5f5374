package apiserver

import (
	"mime"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
)

// The access reviews of authorization.k8s.io/v1 and the SelfSubjectReview
// of authentication.k8s.io/v1 are created, never stored: the response is
// the request with its status filled in.

// RuleResolver lists the rules a user holds in a namespace, for
// SelfSubjectRulesReview (rbac.Authorizer is one). errs are the bindings
// it could not resolve; the rules are then incomplete.
type RuleResolver interface {
	RulesFor(u auth.User, namespace string) (rules []rbacv1.PolicyRule, errs []error)
}

// The review resources, served by handlers of this file.
var (
	subjectAccessReviewsRef = &registry.Resource{Name: "subjectaccessreviews", Singular: "subjectaccessreview",
		Kind: "SubjectAccessReview", Group: authorizationv1.GroupName}
	selfSubjectAccessReviewsRef = &registry.Resource{Name: "selfsubjectaccessreviews", Singular: "selfsubjectaccessreview",
		Kind: "SelfSubjectAccessReview", Group: authorizationv1.GroupName}
	localSubjectAccessReviewsRef = &registry.Resource{Name: "localsubjectaccessreviews", Singular: "localsubjectaccessreview",
		Kind: "LocalSubjectAccessReview", Group: authorizationv1.GroupName, Namespaced: true}
	selfSubjectRulesReviewsRef = &registry.Resource{Name: "selfsubjectrulesreviews", Singular: "selfsubjectrulesreview",
		Kind: "SelfSubjectRulesReview", Group: authorizationv1.GroupName}
	selfSubjectReviewsRef = &registry.Resource{Name: "selfsubjectreviews", Singular: "selfsubjectreview",
		Kind: "SelfSubjectReview", Group: authenticationv1.GroupName}
)

// reviewDiscovery lists a review resource in its group's discovery.
func reviewDiscovery(ref *registry.Resource) metav1.APIResource {
	return metav1.APIResource{Name: ref.Name, SingularName: ref.Singular, Namespaced: ref.Namespaced, Kind: ref.Kind, Verbs: metav1.Verbs{"create"}}
}

// reviewRoute routes the review resources: rest is the path after the
// group-version prefix, split.
func reviewRoute(verb string, parts []string, group string) (requestInfo, handlerFunc, bool) {
	switch {
	case group == authorizationv1.GroupName && len(parts) == 1:
		for _, ref := range []*registry.Resource{subjectAccessReviewsRef, selfSubjectAccessReviewsRef, selfSubjectRulesReviewsRef} {
			if parts[0] == ref.Name {
				return requestInfo{Verb: verb, Resource: ref}, (*Server).serveReview, verb != ""
			}
		}
	case group == authorizationv1.GroupName && len(parts) == 3 && parts[0] == "namespaces" && parts[2] == localSubjectAccessReviewsRef.Name:
		return requestInfo{Verb: verb, Resource: localSubjectAccessReviewsRef, Namespace: parts[1]}, (*Server).serveReview, verb != ""
	case group == authenticationv1.GroupName && len(parts) == 1 && parts[0] == selfSubjectReviewsRef.Name:
		return requestInfo{Verb: verb, Resource: selfSubjectReviewsRef}, (*Server).serveReview, verb != ""
	}
	return requestInfo{}, nil, false
}

// serveReview answers the create of a review.
func (s *Server) serveReview(w *statusRecorder, r *http.Request, info requestInfo) error {
	if info.Verb != "create" {
		return apierrors.NewMethodNotSupported(schemaGR(info.Resource.Name), info.Verb)
	}
	if err := objectOnly(r, info.Resource.Name); err != nil {
		return err
	}
	u, _ := requestUser(r)
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var out any
	switch info.Resource {
	case subjectAccessReviewsRef, localSubjectAccessReviewsRef:
		var sar authorizationv1.SubjectAccessReview
		if info.Resource == localSubjectAccessReviewsRef {
			var lsar authorizationv1.LocalSubjectAccessReview
			if err := strictDecode(w, r, data, &lsar); err != nil {
				return err
			}
			if err := validateLocalReview(&lsar, info.Namespace); err != nil {
				return err
			}
			lsar.Status = s.review(r, reviewUser(lsar.Spec), lsar.Spec.ResourceAttributes, nil)
			lsar.TypeMeta = metav1.TypeMeta{Kind: "LocalSubjectAccessReview", APIVersion: authorizationv1.SchemeGroupVersion.String()}
			out = &lsar
			break
		}
		if err := strictDecode(w, r, data, &sar); err != nil {
			return err
		}
		if err := validateReview(&sar); err != nil {
			return err
		}
		sar.Status = s.review(r, reviewUser(sar.Spec), sar.Spec.ResourceAttributes, sar.Spec.NonResourceAttributes)
		sar.TypeMeta = metav1.TypeMeta{Kind: "SubjectAccessReview", APIVersion: authorizationv1.SchemeGroupVersion.String()}
		out = &sar
	case selfSubjectAccessReviewsRef:
		var ssar authorizationv1.SelfSubjectAccessReview
		if err := strictDecode(w, r, data, &ssar); err != nil {
			return err
		}
		if err := validateAttributesOneOf("SelfSubjectAccessReview", ssar.Spec.ResourceAttributes != nil, ssar.Spec.NonResourceAttributes != nil); err != nil {
			return err
		}
		ssar.Status = s.review(r, u, ssar.Spec.ResourceAttributes, ssar.Spec.NonResourceAttributes)
		ssar.TypeMeta = metav1.TypeMeta{Kind: "SelfSubjectAccessReview", APIVersion: authorizationv1.SchemeGroupVersion.String()}
		out = &ssar
	case selfSubjectRulesReviewsRef:
		var ssrr authorizationv1.SelfSubjectRulesReview
		if err := strictDecode(w, r, data, &ssrr); err != nil {
			return err
		}
		ssrr.Status = s.rulesReview(u, ssrr.Spec.Namespace)
		ssrr.TypeMeta = metav1.TypeMeta{Kind: "SelfSubjectRulesReview", APIVersion: authorizationv1.SchemeGroupVersion.String()}
		out = &ssrr
	case selfSubjectReviewsRef:
		var ssr authenticationv1.SelfSubjectReview
		if err := strictDecode(w, r, data, &ssr); err != nil {
			return err
		}
		ssr.Status.UserInfo = userInfo(u)
		ssr.TypeMeta = metav1.TypeMeta{Kind: "SelfSubjectReview", APIVersion: authenticationv1.SchemeGroupVersion.String()}
		ssr.CreationTimestamp = metav1.NewTime(s.cfg.Now())
		out = &ssr
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// review decides the access a review asks about for u.
func (s *Server) review(r *http.Request, u auth.User, ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) authorizationv1.SubjectAccessReviewStatus {
	var a auth.Attributes
	if ra != nil {
		a = auth.Attributes{Verb: ra.Verb, APIGroup: ra.Group, Resource: ra.Resource, Subresource: ra.Subresource,
			Namespace: ra.Namespace, Name: ra.Name}
		if a.Resource == "" {
			return authorizationv1.SubjectAccessReviewStatus{Reason: "no resource named"}
		}
	} else {
		a = auth.Attributes{Verb: nra.Verb, Path: nra.Path}
	}
	if s.cfg.Authorizer == nil {
		return authorizationv1.SubjectAccessReviewStatus{Allowed: true}
	}
	allowed, reason := s.cfg.Authorizer.Authorize(r.Context(), u, a)
	if !allowed {
		reason = "" // the fixed rules' explanation is not a policy's reason
	}
	return authorizationv1.SubjectAccessReviewStatus{Allowed: allowed, Reason: reason}
}

// rulesReview lists what u may do in namespace.
func (s *Server) rulesReview(u auth.User, namespace string) authorizationv1.SubjectRulesReviewStatus {
	st := authorizationv1.SubjectRulesReviewStatus{
		ResourceRules: []authorizationv1.ResourceRule{}, NonResourceRules: []authorizationv1.NonResourceRule{},
	}
	if s.cfg.Rules == nil {
		st.Incomplete = true
		return st
	}
	if u.InGroup(auth.GroupMasters) {
		// system:masters is allowed everything without a binding.
		st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}})
		st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}})
	}
	rules, errs := s.cfg.Rules.RulesFor(u, namespace)
	for _, rule := range rules {
		if len(rule.NonResourceURLs) > 0 {
			st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{Verbs: rule.Verbs, NonResourceURLs: rule.NonResourceURLs})
			continue
		}
		st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{
			Verbs: rule.Verbs, APIGroups: rule.APIGroups, Resources: rule.Resources, ResourceNames: rule.ResourceNames,
		})
	}
	if len(errs) > 0 {
		st.Incomplete = true
		st.EvaluationError = errs[0].Error()
	}
	return st
}

// reviewUser is the user a SubjectAccessReview asks about.
func reviewUser(spec authorizationv1.SubjectAccessReviewSpec) auth.User {
	u := auth.User{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
	if len(spec.Extra) > 0 {
		u.Extra = make(map[string][]string, len(spec.Extra))
		for k, v := range spec.Extra {
			u.Extra[k] = v
		}
	}
	return u
}

func userInfo(u auth.User) authenticationv1.UserInfo {
	info := authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		info.Extra = make(map[string]authenticationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			info.Extra[k] = v
		}
	}
	return info
}

var specPath = field.NewPath("spec")

// validateReview checks a SubjectAccessReview as Kubernetes does: one
// kind of attributes, and a user or a group.
func validateReview(sar *authorizationv1.SubjectAccessReview) error {
	errs := attributesOneOf(sar.Spec.ResourceAttributes != nil, sar.Spec.NonResourceAttributes != nil)
	if sar.Spec.User == "" && len(sar.Spec.Groups) == 0 {
		errs = append(errs, field.Invalid(specPath.Child("user"), sar.Spec.User, `at least one of user or group must be specified`))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Group: authorizationv1.GroupName, Kind: "SubjectAccessReview"}, "", errs)
	}
	return nil
}

// validateLocalReview checks a LocalSubjectAccessReview: resource
// attributes in the namespace of the request, and a user or a group.
func validateLocalReview(lsar *authorizationv1.LocalSubjectAccessReview, namespace string) error {
	var errs field.ErrorList
	switch ra := lsar.Spec.ResourceAttributes; {
	case ra == nil:
		errs = append(errs, field.Required(specPath.Child("resourceAttributes"), ""))
	case ra.Namespace != namespace:
		errs = append(errs, field.Invalid(specPath.Child("resourceAttributes", "namespace"), ra.Namespace, "must match metadata.namespace"))
	}
	if lsar.Namespace != "" && lsar.Namespace != namespace {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "namespace"), lsar.Namespace, "must match the namespace of the request"))
	}
	if lsar.Spec.NonResourceAttributes != nil {
		errs = append(errs, field.Invalid(specPath.Child("nonResourceAttributes"), lsar.Spec.NonResourceAttributes, "disallowed on this kind of request"))
	}
	if lsar.Spec.User == "" && len(lsar.Spec.Groups) == 0 {
		errs = append(errs, field.Invalid(specPath.Child("user"), lsar.Spec.User, `at least one of user or group must be specified`))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Group: authorizationv1.GroupName, Kind: "LocalSubjectAccessReview"}, "", errs)
	}
	if lsar.Namespace == "" {
		lsar.Namespace = namespace
	}
	return nil
}

func validateAttributesOneOf(kind string, resource, nonResource bool) error {
	if errs := attributesOneOf(resource, nonResource); len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Group: authorizationv1.GroupName, Kind: kind}, "", errs)
	}
	return nil
}

func attributesOneOf(resource, nonResource bool) field.ErrorList {
	p := specPath.Child("resourceAttributes")
	switch {
	case resource && nonResource:
		return field.ErrorList{field.Invalid(p, "resourceAttributes", "cannot be specified in combination with nonResourceAttributes")}
	case !resource && !nonResource:
		return field.ErrorList{field.Invalid(p, nil, "exactly one of nonResourceAttributes or resourceAttributes must be specified")}
	}
	return nil
}

// requestUser is the user a request acts as, which serve puts in its
// context.
func requestUser(r *http.Request) (auth.User, bool) { return auth.UserFrom(r.Context()) }

// objectOnly refuses, with 406, a request that accepts only a Table or
// partial metadata of a resource that has neither: the reviews are
// answered, never stored or listed.
func objectOnly(r *http.Request, resource string) error {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && params["as"] == "" &&
			(mt == "application/json" || mt == protobufType || mt == "*/*" || mt == "application/*") {
			return nil
		}
	}
	return apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "create", schemaGR(resource), "",
		"only the following media types are accepted: application/json, application/vnd.kubernetes.protobuf", 0, false)
}
