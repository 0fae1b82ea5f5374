// Package auth authenticates and authorizes API requests.
//
// # Authentication
//
// An Authenticator maps a request to a User: from a client certificate
// issued by the cluster CA (common name = user name, organizations =
// groups), from a bearer token in a fixed table (the join token secret
// maps to BootstrapUser, the admin token to AdminUser) or from a bearer
// token a TokenAuthenticator accepts (service account tokens, user
// system:serviceaccount:NS:NAME in groups system:serviceaccounts and
// system:serviceaccounts:NS). Given a RequestHeader (WithRequestHeader),
// a client certificate of the front-proxy CA with an allowed name
// authenticates the user named in X-Remote-User, X-Remote-Group and
// X-Remote-Extra-* instead. It knows nothing
// of the API server; the server decides what to do with requests that
// carry no credentials (pass Anonymous to the Authorizer, or answer 401).
//
// # Authorization
//
// An Authorizer applies fixed rules: system:masters may do everything,
// health and version paths are public, discovery needs authentication, and
// nodes get the narrow set of rights an agent needs, confined to their own
// Node object and, given a PodNodeGetter, their own pods; given a
// NodePodLister, a node may get the Secrets and ConfigMaps its pods use.
// What these rules do not allow is left to a Policy: minik's RBAC
// (package rbac), which also grants service accounts what they may do.
//
// # Admission
//
// Authorizer.Admit decides a write on the object it would store, after
// Authorize allowed the request. It applies the rules of Kubernetes'
// NodeRestriction admission plugin: a node may not give its Node a
// podCIDR, role or other control-plane labels, another node's hostname
// label or new taints, and writes only the status of its pods.
//
// # Wiring
//
//	authn := auth.NewAuthenticator(ca.ClientCAPool(), map[string]auth.User{
//		ca.TokenSecret(): auth.BootstrapUser,
//		ca.Token():       auth.BootstrapUser,
//		ca.AdminToken():  auth.AdminUser,
//	})
//	authz := &auth.Authorizer{Pods: podNodeGetter}
//	u, ok := authn.Authenticate(r)       // !ok: 401, or Anonymous
//	allowed, reason := authz.Authorize(ctx, u, attrs) // !allowed: 403 with reason
//	allowed, reason = authz.Admit(ctx, u, attrs, obj, old) // for a create, update or patch
package auth
