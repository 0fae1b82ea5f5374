package auth

import (
	"context"
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

// Attributes describe what a request asks to do. A resource request has
// Resource set; a non-resource request (discovery, health, metrics) has
// only Verb and Path.
type Attributes struct {
	// Verb is get, list, watch, create, update, patch, delete or
	// deletecollection for a resource request, and "get" for a GET or HEAD
	// of a non-resource path.
	Verb string
	// APIGroup is the resource's API group, "" for the core group.
	APIGroup string
	// Resource is the plural resource name, e.g. "pods".
	Resource string
	// Subresource is e.g. "status", or "".
	Subresource string
	// Namespace is the request's namespace, "" for cluster-scoped
	// resources and requests across all namespaces.
	Namespace string
	// Name is the object's name. For create, the caller sets it from the
	// metadata.name of the object it decoded and will store, not from
	// another reading of the body: a node may create only its own Node.
	Name string
	// Path is the URL path of a non-resource request.
	Path string
}

// IsResourceRequest reports whether a names a resource rather than a path.
func (a Attributes) IsResourceRequest() bool { return a.Resource != "" }

// PodNodeGetter tells which node a pod is bound to. The API server supplies
// one so that the Authorizer can confine a node's pod writes to its own
// pods. PodNode returns "" for an unbound pod and an error if the pod
// does not exist or cannot be read. It must be safe to call concurrently.
type PodNodeGetter interface {
	PodNode(ctx context.Context, namespace, name string) (nodeName string, err error)
}

// PodNodeFunc adapts a function to PodNodeGetter.
type PodNodeFunc func(ctx context.Context, namespace, name string) (string, error)

// PodNode calls f.
func (f PodNodeFunc) PodNode(ctx context.Context, namespace, name string) (string, error) {
	return f(ctx, namespace, name)
}

// Authorizer decides whether a user may do what a request asks. Its rules:
//
//   - Group system:masters may do everything.
//   - Anyone, authenticated or not, may get /healthz, /readyz, /livez and
//     /version (and paths below them). Whether unauthenticated requests
//     reach the Authorizer at all is the caller's decision; pass Anonymous.
//   - Authenticated users may get /api, /apis and /openapi and paths below
//     them (discovery), and the service account issuer's OpenID discovery
//     documents (/.well-known/openid-configuration, /openid/v1/jwks).
//   - Nodes (user system:node:NAME in group system:nodes) may get, list
//     and watch pods, services, endpoints, nodes and namespaces; create,
//     update and patch their own Node and update and patch its status;
//     update and patch pods/status (only for pods bound to them when Pods
//     is set); create, update and patch events; and get the Secrets and
//     ConfigMaps used by pods bound to them (when NodePods is set).
//   - Everything these rules do not allow is decided by Policy (RBAC), if
//     set, and else denied.
//
// The zero value is ready to use. An Authorizer is safe for concurrent use
// if Pods, NodePods and Policy are.
type Authorizer struct {
	// Pods, if set, confines a node's pods/status writes to the pods bound
	// to it. Reads are not narrowed: a node may list and watch all pods.
	Pods PodNodeGetter
	// NodePods, if set, lets a node get the Secrets and ConfigMaps its
	// pods use (noderefs.go); without it, nodes get none.
	NodePods NodePodLister
	// Policy, if set, decides what the fixed rules do not allow, and
	// admits writes after the node restrictions (RBAC's escalation
	// checks).
	Policy Policy
}

// Policy is an authorizer consulted after the fixed rules: RBAC. Its
// Authorize and Admit are as the Authorizer's.
type Policy interface {
	Authorize(ctx context.Context, u User, a Attributes) (allowed bool, reason string)
	Admit(ctx context.Context, u User, a Attributes, obj, old runtime.Object) (allowed bool, reason string)
}

// publicPaths are open to everyone; discoveryPaths to authenticated users.
var (
	publicPaths    = []string{"/healthz", "/readyz", "/livez", "/version"}
	discoveryPaths = []string{"/api", "/apis", "/openapi", "/.well-known/openid-configuration", "/openid/v1/jwks"}
)

// Resources and verbs of the node rules, all in the core group.
var (
	nodeReadable  = set("pods", "services", "endpoints", "nodes", "namespaces")
	readVerbs     = set("get", "list", "watch")
	nodeObjVerbs  = set("create", "update", "patch")
	statusVerbs   = set("update", "patch")
	eventVerbs    = set("create", "update", "patch")
	eventAPIGroup = set("", "events.k8s.io")
)

// Authorize reports whether u may do a, with the reason for the decision.
// A denial's reason says what is missing, for the Forbidden message; ctx
// bounds a Pods lookup.
func (z *Authorizer) Authorize(ctx context.Context, u User, a Attributes) (allowed bool, reason string) {
	if u.InGroup(GroupMasters) {
		return true, "group " + GroupMasters + " may do everything"
	}
	if a.Verb == "" {
		return false, "request has no verb"
	}
	switch node, isNode := NodeName(u); {
	case !a.IsResourceRequest():
		allowed, reason = authorizePath(u, a)
	case isNode:
		allowed, reason = z.authorizeNode(ctx, node, a)
	default:
		reason = fmt.Sprintf("no rule allows user %q to %s %s", u.Name, a.Verb, describe(a))
	}
	if allowed || z.Policy == nil {
		return allowed, reason
	}
	if ok, why := z.Policy.Authorize(ctx, u, a); ok {
		return true, why
	}
	return false, reason
}

// authorizePath decides a non-resource request.
func authorizePath(u User, a Attributes) (bool, string) {
	if a.Verb != "get" {
		return false, fmt.Sprintf("non-resource path %q allows only get", a.Path)
	}
	p := cleanPath(a.Path)
	if underAny(p, publicPaths) {
		return true, "path is public"
	}
	if underAny(p, discoveryPaths) {
		if u.Authenticated() {
			return true, "discovery is open to authenticated users"
		}
		return false, fmt.Sprintf("path %q requires an authenticated user", a.Path)
	}
	return false, fmt.Sprintf("no rule allows user %q to get path %q", u.Name, a.Path)
}

// authorizeNode applies the node rules for the node named node.
func (z *Authorizer) authorizeNode(ctx context.Context, node string, a Attributes) (bool, string) {
	switch {
	case a.Resource == "events" && eventAPIGroup[a.APIGroup] && a.Subresource == "":
		if eventVerbs[a.Verb] {
			return true, "nodes may record events"
		}
	case a.Resource == "clustertrustbundles" && a.APIGroup == "certificates.k8s.io" && a.Subresource == "":
		// Bundles hold only public certificates; the kubelet reads them
		// for projected volumes, as upstream's node authorizer allows.
		if readVerbs[a.Verb] {
			return true, "nodes may read clustertrustbundles"
		}
	case a.APIGroup != "":
		// Node rules cover only the core group from here on.
	case a.Subresource == "" && nodeReferenced[a.Resource] != nil:
		return z.authorizeNodeReference(ctx, node, a)
	case a.Subresource == "" && readVerbs[a.Verb] && nodeReadable[a.Resource]:
		return true, "nodes may read " + a.Resource
	case a.Subresource == "status" && a.Verb == "get" && (a.Resource == "nodes" || a.Resource == "pods"):
		return true, "nodes may read " + a.Resource + "/status"
	case a.Resource == "nodes" && (a.Subresource == "" && nodeObjVerbs[a.Verb] || a.Subresource == "status" && statusVerbs[a.Verb]):
		if a.Name == "" {
			return false, fmt.Sprintf("node %q may %s only its own Node, and the request names none", node, a.Verb)
		}
		if a.Name != node {
			return false, fmt.Sprintf("node %q may not %s %s", node, a.Verb, describe(a))
		}
		return true, "nodes may write their own Node"
	case a.Resource == "pods" && a.Subresource == "status" && statusVerbs[a.Verb]:
		return z.authorizePodStatus(ctx, node, a)
	}
	return false, fmt.Sprintf("no rule allows node %q to %s %s", node, a.Verb, describe(a))
}

// authorizePodStatus lets a node write the status of pods bound to it, or
// of any pod when there is no PodNodeGetter to ask.
func (z *Authorizer) authorizePodStatus(ctx context.Context, node string, a Attributes) (bool, string) {
	if z.Pods == nil {
		return true, "nodes may write pod status"
	}
	if a.Name == "" || a.Namespace == "" {
		return false, fmt.Sprintf("node %q may %s only the status of a named pod", node, a.Verb)
	}
	bound, err := z.Pods.PodNode(ctx, a.Namespace, a.Name)
	switch {
	case err != nil:
		return false, fmt.Sprintf("cannot tell which node pod %s/%s is bound to: %v", a.Namespace, a.Name, err)
	case bound != node:
		return false, fmt.Sprintf("node %q may not %s %s: pod is bound to node %q", node, a.Verb, describe(a), bound)
	}
	return true, "nodes may write the status of their own pods"
}

// describe names the target of a resource request for messages, e.g.
// `pods/status "web" in namespace "default"`.
func describe(a Attributes) string {
	var b strings.Builder
	b.WriteString(a.Resource)
	if a.Subresource != "" {
		b.WriteString("/" + a.Subresource)
	}
	if a.APIGroup != "" {
		b.WriteString("." + a.APIGroup)
	}
	if a.Name != "" {
		fmt.Fprintf(&b, " %q", a.Name)
	}
	if a.Namespace != "" {
		fmt.Fprintf(&b, " in namespace %q", a.Namespace)
	}
	return b.String()
}

// cleanPath resolves dot segments and slashes, so that "/healthz/../x"
// cannot pass for a path under /healthz.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	return path.Clean("/" + p)
}

// underAny reports whether p is one of roots or below one of them.
func underAny(p string, roots []string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}
