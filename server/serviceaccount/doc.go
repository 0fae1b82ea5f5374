// Package serviceaccount issues and checks service account tokens: JWTs
// signed with RS256 by the cluster's service account key, carrying the
// claims Kubernetes puts in them.
//
// # Tokens
//
// An Issuer signs Claims for a service account, optionally bound to a pod
// or a secret: the standard claims iss, sub ("system:serviceaccount:NS:NAME"),
// aud, exp, iat, nbf and jti, and a private "kubernetes.io" claim naming
// the namespace, the service account, the bound object and, for a pod,
// its node (names and uids). It parses tokens back after checking the
// signature, the issuer and the times (with one minute of leeway for
// clock skew, as Kubernetes allows).
//
// # Authentication
//
// An Authenticator accepts a token as a bearer credential when, beyond
// what Parse checks, the token is meant for one of the API server's
// audiences and the objects it names still exist with the same uids (the
// service account, and the pod or secret it is bound to). It reads them
// through a Getter and keeps accepted tokens for a short while (CacheTTL),
// so that a client's steady stream of requests costs one map lookup each:
// a deleted pod's token is refused at most CacheTTL after the deletion, as
// in Kubernetes, whose token cache keeps successes for 10 seconds.
//
// # Discovery
//
// JWKS and OpenIDConfiguration give the documents served at
// /openid/v1/jwks and /.well-known/openid-configuration, with which
// anyone can verify tokens without asking the API server.
package serviceaccount
