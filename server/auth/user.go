package auth

import (
	"context"
	"slices"
	"strings"
)

// Well-known user names, prefixes and groups.
const (
	// GroupMasters is allowed everything.
	GroupMasters = "system:masters"
	// GroupNodes holds node identities, named NodeUserPrefix+node name.
	GroupNodes = "system:nodes"
	// GroupBootstrappers holds holders of the join token secret.
	GroupBootstrappers = "system:bootstrappers"
	// GroupAuthenticated is added to every user Authenticate accepts.
	GroupAuthenticated = "system:authenticated"
	// GroupUnauthenticated is the group of Anonymous.
	GroupUnauthenticated = "system:unauthenticated"
	// NodeUserPrefix starts the user name of a node: "system:node:NAME".
	NodeUserPrefix = "system:node:"
	// AnonymousName is the user name of Anonymous.
	AnonymousName = "system:anonymous"
	// ServiceAccountUserPrefix starts the user name of a service account:
	// "system:serviceaccount:NAMESPACE:NAME".
	ServiceAccountUserPrefix = "system:serviceaccount:"
	// GroupServiceAccounts holds every service account; each is also in
	// GroupServiceAccounts+":"+its namespace.
	GroupServiceAccounts = "system:serviceaccounts"
)

// Keys of User.Extra for service account users, as Kubernetes sets them.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraNodeUID      = "authentication.kubernetes.io/node-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// User is an authenticated identity: a name, the groups it belongs to
// and, for some credentials, a uid and extra facts about it
// (ExtraPodName, …). Extra may be shared between users: read it only.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Identities callers map credentials to.
var (
	// Anonymous is the user of a request without credentials, for callers
	// that let such requests through to the Authorizer.
	Anonymous = User{Name: AnonymousName, Groups: []string{GroupUnauthenticated}}
	// AdminUser is the identity of the admin bearer token, matching the
	// admin client certificate.
	AdminUser = User{Name: "system:admin", Groups: []string{GroupMasters}}
	// BootstrapUser is the identity of the join token secret: an agent that
	// has not yet got its node certificate.
	BootstrapUser = User{Name: "system:bootstrap", Groups: []string{GroupBootstrappers}}
)

// InGroup reports whether u belongs to group.
func (u User) InGroup(group string) bool {
	return slices.Contains(u.Groups, group)
}

// Authenticated reports whether u is a real identity rather than the
// empty User or Anonymous.
func (u User) Authenticated() bool {
	return u.Name != "" && u.Name != AnonymousName
}

// NodeName returns the node a user stands for: NAME for a user named
// "system:node:NAME" in group system:nodes. ok is false for any other user
// and for an empty NAME.
func NodeName(u User) (name string, ok bool) {
	name, found := strings.CutPrefix(u.Name, NodeUserPrefix)
	if !found || name == "" || !u.InGroup(GroupNodes) {
		return "", false
	}
	return name, true
}

// ServiceAccountUser returns the user a token of service account
// namespace/name authenticates as, uid being the account's.
func ServiceAccountUser(namespace, name, uid string) User {
	return User{
		Name:   ServiceAccountUserPrefix + namespace + ":" + name,
		UID:    uid,
		Groups: []string{GroupServiceAccounts, GroupServiceAccounts + ":" + namespace},
	}
}

// ServiceAccount returns the namespace and name of the service account a
// user stands for: a user named "system:serviceaccount:NS:NAME" in group
// system:serviceaccounts. ok is false for any other user.
func ServiceAccount(u User) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(u.Name, ServiceAccountUserPrefix)
	if !found || !u.InGroup(GroupServiceAccounts) {
		return "", "", false
	}
	namespace, name, found = strings.Cut(rest, ":")
	if !found || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return namespace, name, true
}

type userKey struct{}

// WithUser returns a copy of ctx carrying u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user WithUser stored in ctx; ok is false if none.
func UserFrom(ctx context.Context) (u User, ok bool) {
	u, ok = ctx.Value(userKey{}).(User)
	return u, ok
}
