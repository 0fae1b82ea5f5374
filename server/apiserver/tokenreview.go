package apiserver

import (
	"context"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
)

// TokenReviewer reviews bearer tokens for TokenReview: the user a token
// stands for and the audiences it is accepted for, of audiences (empty:
// the API server's own). An Authenticator that also implements it serves
// authentication.k8s.io/v1 TokenReview; auth.Authenticator does.
type TokenReviewer interface {
	ReviewToken(ctx context.Context, token string, audiences []string) (u auth.User, accepted []string, ok bool)
}

// tokenReviewsRef describes the tokenreviews resource, which is served by
// serveTokenReview rather than stored.
var tokenReviewsRef = &registry.Resource{
	Name: "tokenreviews", Singular: "tokenreview", Kind: "TokenReview", Group: authenticationv1.GroupName,
}

// handlerGroups are the API groups whose resources are all served by
// handlers of their own, with their discovery entries.
var handlerGroups = map[string][]metav1.APIResource{
	authenticationv1.GroupName: {
		{Name: "tokenreviews", SingularName: "tokenreview", Kind: "TokenReview", Verbs: metav1.Verbs{"create"}},
		reviewDiscovery(selfSubjectReviewsRef),
	},
	authorizationv1.GroupName: {
		reviewDiscovery(localSubjectAccessReviewsRef), reviewDiscovery(selfSubjectAccessReviewsRef),
		reviewDiscovery(selfSubjectRulesReviewsRef), reviewDiscovery(subjectAccessReviewsRef),
	},
}

// tokenRequestResource is the discovery entry of serviceaccounts/token.
var tokenRequestResource = metav1.APIResource{
	Name: "serviceaccounts/token", Namespaced: true, Group: authenticationv1.GroupName, Version: "v1",
	Kind: "TokenRequest", Verbs: metav1.Verbs{"create"},
}

// handlerFunc serves a request routed by handlerRoute.
type handlerFunc func(s *Server, w *statusRecorder, r *http.Request, info requestInfo) error

// handlerRoute routes the resource requests that handlers of their own
// serve rather than the registry's generic ones: serviceaccounts/NAME/token
// and tokenreviews.
// rest is the path after the group-version prefix gv.
func handlerRoute(method, rest, gvGroup string) (requestInfo, handlerFunc, bool) {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if info, h, ok := proxyRoute(method, parts, gvGroup); ok {
		return info, h, ok
	}
	verb := verbFor(method, false, false)
	if method == http.MethodGet || method == http.MethodHead {
		verb = "get"
	}
	switch {
	case gvGroup == "" && len(parts) == 5 && parts[0] == "namespaces" && parts[2] == "serviceaccounts" && parts[4] == "token":
		info := requestInfo{Verb: verb, Resource: serviceAccountsResource(), Namespace: parts[1], Name: parts[3], Subresource: "token"}
		return info, (*Server).serveTokenRequest, verb != ""
	case gvGroup == authenticationv1.GroupName && len(parts) == 1 && parts[0] == "tokenreviews":
		return requestInfo{Verb: verb, Resource: tokenReviewsRef}, (*Server).serveTokenReview, verb != ""
	}
	return reviewRoute(verb, parts, gvGroup)
}

// serveTokenReview authenticates the token in a TokenReview.
func (s *Server) serveTokenReview(w *statusRecorder, r *http.Request, info requestInfo) error {
	reviewer, ok := s.cfg.Authenticator.(TokenReviewer)
	if !ok {
		return notFoundPath(r.URL.Path)
	}
	if info.Verb != "create" {
		return apierrors.NewMethodNotSupported(schemaGR("tokenreviews"), info.Verb)
	}
	if err := objectOnly(r, "tokenreviews"); err != nil {
		return err
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var tr authenticationv1.TokenReview
	if err := strictDecode(w, r, data, &tr); err != nil {
		return err
	}
	if tr.Spec.Token == "" {
		return badRequest("token is required for TokenReview in authentication")
	}
	u, accepted, ok := reviewer.ReviewToken(r.Context(), tr.Spec.Token, tr.Spec.Audiences)
	tr.TypeMeta = metav1.TypeMeta{Kind: "TokenReview", APIVersion: authenticationv1.SchemeGroupVersion.String()}
	tr.ObjectMeta = metav1.ObjectMeta{Name: tr.Name, CreationTimestamp: metav1.NewTime(s.cfg.Now())}
	tr.Status = authenticationv1.TokenReviewStatus{Authenticated: ok}
	if ok {
		tr.Status.Audiences = accepted
		tr.Status.User = authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
		if len(u.Extra) > 0 {
			tr.Status.User.Extra = make(map[string]authenticationv1.ExtraValue, len(u.Extra))
			for k, v := range u.Extra {
				tr.Status.User.Extra[k] = authenticationv1.ExtraValue(v)
			}
		}
	} else {
		tr.Status.Error = "invalid bearer token"
	}
	writeJSON(w, http.StatusCreated, &tr)
	return nil
}

// serveOIDC serves the service account issuer's OpenID discovery documents
// and reports whether path was one of them.
func (s *Server) serveOIDC(w *statusRecorder, r *http.Request, path string) bool {
	if s.cfg.ServiceAccounts == nil || (path != serviceaccount.OpenIDConfigPath && path != serviceaccount.JWKSPath) {
		return false
	}
	var data []byte
	var err error
	contentType := "application/json"
	if path == serviceaccount.JWKSPath {
		data, err = s.cfg.ServiceAccounts.JWKS()
		contentType = "application/jwk-set+json"
	} else {
		data, err = s.cfg.ServiceAccounts.OpenIDConfiguration(s.cfg.JWKSURI)
	}
	if err != nil {
		s.writeStatus(w, r, err, schemaGR(""), "")
		return true
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
	return true
}
