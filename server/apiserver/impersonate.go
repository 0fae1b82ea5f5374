package apiserver

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/server/auth"
)

// A request may act as another user with the Impersonate-User,
// Impersonate-Uid, Impersonate-Group and Impersonate-Extra-KEY headers,
// as in Kubernetes. Each part is authorized as the verb "impersonate":
// users, groups and serviceaccounts (a user named
// system:serviceaccount:NS:NAME) in the core group, uids and
// userextras/KEY in authentication.k8s.io. The request then runs as the
// impersonated user alone.

// impersonate returns the user r acts as: u itself without impersonation
// headers, else the impersonated user, once u may impersonate every part
// of it. The headers are removed from r. A denial is a 403 Forbidden
// Status; headers that impersonate groups, a uid or extras but no user
// are a 400.
func (s *Server) impersonate(ctx context.Context, r *http.Request, u auth.User) (auth.User, error) {
	h := r.Header
	name := h.Get(authenticationv1.ImpersonateUserHeader)
	groups := h.Values(authenticationv1.ImpersonateGroupHeader)
	uid := h.Get(authenticationv1.ImpersonateUIDHeader)
	extra := map[string][]string{}
	for key, values := range h {
		k, ok := strings.CutPrefix(key, authenticationv1.ImpersonateUserExtraHeaderPrefix)
		if !ok {
			continue
		}
		k, err := url.PathUnescape(strings.ToLower(k))
		if err != nil {
			return u, badRequest("malformed header %s: %v", key, err)
		}
		extra[k] = append(extra[k], values...)
	}
	if name == "" && len(groups) == 0 && uid == "" && len(extra) == 0 {
		return u, nil
	}
	if name == "" {
		return u, badRequest("requested impersonation of groups, uid or extras without impersonating a user")
	}
	target := auth.User{Name: name, UID: uid, Groups: slices.Clone(groups)}
	var parts []auth.Attributes
	if ns, sa, ok := serviceAccountName(name); ok {
		parts = append(parts, auth.Attributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: ns, Name: sa})
		target.Groups = appendMissing(target.Groups, auth.GroupServiceAccounts, auth.GroupServiceAccounts+":"+ns)
	} else {
		parts = append(parts, auth.Attributes{Verb: "impersonate", Resource: "users", Name: name})
	}
	for _, g := range groups {
		parts = append(parts, auth.Attributes{Verb: "impersonate", Resource: "groups", Name: g})
	}
	if uid != "" {
		parts = append(parts, auth.Attributes{Verb: "impersonate", APIGroup: authenticationv1.GroupName, Resource: "uids", Name: uid})
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		for _, v := range extra[k] {
			parts = append(parts, auth.Attributes{Verb: "impersonate", APIGroup: authenticationv1.GroupName, Resource: "userextras", Subresource: k, Name: v})
		}
		if target.Extra == nil {
			target.Extra = map[string][]string{}
		}
		target.Extra[k] = extra[k]
	}
	if s.cfg.Authorizer != nil {
		for _, a := range parts {
			if ok, _ := s.cfg.Authorizer.Authorize(ctx, u, a); !ok {
				return u, impersonationForbidden(u, a)
			}
		}
	}
	if name == auth.AnonymousName {
		target.Groups = appendMissing(target.Groups, auth.GroupUnauthenticated)
	} else {
		target.Groups = appendMissing(target.Groups, auth.GroupAuthenticated)
	}
	for key := range h {
		if strings.HasPrefix(key, "Impersonate-") {
			h.Del(key)
		}
	}
	return target, nil
}

// impersonationForbidden is the Status of a refused impersonation,
// worded as Kubernetes'.
func impersonationForbidden(u auth.User, a auth.Attributes) error {
	scope := "at the cluster scope"
	if a.Namespace != "" {
		scope = fmt.Sprintf("in the namespace %q", a.Namespace)
	}
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: resource}, a.Name,
		errString(fmt.Sprintf("User %q cannot impersonate resource %q in API group %q %s", u.Name, resource, a.APIGroup, scope)))
}

// serviceAccountName splits a service account's user name.
func serviceAccountName(user string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, auth.ServiceAccountUserPrefix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok && namespace != "" && name != "" && !strings.Contains(name, ":")
}

func appendMissing(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}
