package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/minik-dev/minik/server/auth"
)

var (
	master    = auth.User{Name: "alice", Groups: []string{auth.GroupMasters, auth.GroupAuthenticated}}
	node1     = auth.User{Name: "system:node:n1", Groups: []string{auth.GroupNodes, auth.GroupAuthenticated}}
	plain     = auth.User{Name: "bob", Groups: []string{auth.GroupAuthenticated}}
	bootstrap = auth.BootstrapUser
	anonymous = auth.Anonymous
	// fakeNode claims a node name without the nodes group.
	fakeNode = auth.User{Name: "system:node:n1", Groups: []string{auth.GroupAuthenticated}}
	// nameless is in the nodes group with no node name.
	nameless = auth.User{Name: "system:node:", Groups: []string{auth.GroupNodes}}
)

func res(verb, resource, sub, ns, name string) auth.Attributes {
	return auth.Attributes{Verb: verb, Resource: resource, Subresource: sub, Namespace: ns, Name: name}
}

func path(verb, p string) auth.Attributes {
	return auth.Attributes{Verb: verb, Path: p}
}

func TestAuthorize(t *testing.T) {
	tests := []struct {
		name string
		user auth.User
		attr auth.Attributes
		want bool
	}{
		// Masters.
		{"master deletes secrets", master, res("delete", "secrets", "", "kube-system", "s"), true},
		{"master reads metrics", master, path("get", "/metrics"), true},
		{"master posts to a path", master, path("post", "/anything"), true},
		{"master in apps group", master, auth.Attributes{Verb: "create", APIGroup: "apps", Resource: "deployments", Namespace: "d"}, true},

		// Non-resource paths.
		{"anonymous healthz", anonymous, path("get", "/healthz"), true},
		{"empty user readyz", auth.User{}, path("get", "/readyz"), true},
		{"anonymous livez sub-check", anonymous, path("get", "/livez/ping"), true},
		{"anonymous version", anonymous, path("get", "/version"), true},
		{"anonymous healthz escape", anonymous, path("get", "/healthz/../metrics"), false},
		{"anonymous healthzfoo", anonymous, path("get", "/healthzfoo"), false},
		{"anonymous discovery", anonymous, path("get", "/api"), false},
		{"anonymous openapi", anonymous, path("get", "/openapi/v2"), false},
		{"plain api", plain, path("get", "/api"), true},
		{"plain api/v1", plain, path("get", "/api/v1"), true},
		{"plain apis", plain, path("get", "/apis/"), true},
		{"plain openapi v3", plain, path("get", "/openapi/v3/api/v1"), true},
		{"bootstrap discovery", bootstrap, path("get", "/apis"), true},
		{"node discovery", node1, path("get", "/api"), true},
		{"plain metrics", plain, path("get", "/metrics"), false},
		{"node metrics", node1, path("get", "/metrics"), false},
		{"plain post healthz", plain, path("post", "/healthz"), false},
		{"plain unknown path", plain, path("get", "/debug/pprof"), false},
		{"no verb", plain, path("", "/healthz"), false},

		// Other users get no resources.
		{"plain lists pods", plain, res("list", "pods", "", "default", ""), false},
		{"bootstrap lists nodes", bootstrap, res("list", "nodes", "", "", ""), false},
		{"anonymous gets pod", anonymous, res("get", "pods", "", "default", "p"), false},
		{"fake node lists pods", fakeNode, res("list", "pods", "", "", ""), false},
		{"nameless node lists pods", nameless, res("list", "pods", "", "", ""), false},

		// Node reads.
		{"node lists pods", node1, res("list", "pods", "", "", ""), true},
		{"node watches pods", node1, res("watch", "pods", "", "default", ""), true},
		{"node gets pod", node1, res("get", "pods", "", "default", "p"), true},
		{"node lists services", node1, res("list", "services", "", "", ""), true},
		{"node watches endpoints", node1, res("watch", "endpoints", "", "", ""), true},
		{"node gets another node", node1, res("get", "nodes", "", "", "n2"), true},
		{"node lists namespaces", node1, res("list", "namespaces", "", "", ""), true},
		{"node gets own status", node1, res("get", "nodes", "status", "", "n1"), true},
		{"node reads secrets", node1, res("get", "secrets", "", "default", "s"), false},
		{"node lists configmaps", node1, res("list", "configmaps", "", "default", ""), false},
		{"node lists replicationcontrollers", node1, res("list", "replicationcontrollers", "", "", ""), false},
		{"node reads pods in apps group", node1, auth.Attributes{Verb: "list", APIGroup: "apps", Resource: "pods"}, false},
		{"node reads pod logs", node1, res("get", "pods", "log", "default", "p"), false},

		// Node writes to nodes.
		{"node creates itself", node1, res("create", "nodes", "", "", "n1"), true},
		{"node updates itself", node1, res("update", "nodes", "", "", "n1"), true},
		{"node patches itself", node1, res("patch", "nodes", "", "", "n1"), true},
		{"node updates own status", node1, res("update", "nodes", "status", "", "n1"), true},
		{"node patches own status", node1, res("patch", "nodes", "status", "", "n1"), true},
		{"node creates another", node1, res("create", "nodes", "", "", "n2"), false},
		{"node creates unnamed", node1, res("create", "nodes", "", "", ""), false},
		{"node updates another", node1, res("update", "nodes", "", "", "n2"), false},
		{"node patches another's status", node1, res("patch", "nodes", "status", "", "n2"), false},
		{"node deletes itself", node1, res("delete", "nodes", "", "", "n1"), false},
		{"node deletes all nodes", node1, res("deletecollection", "nodes", "", "", ""), false},
		{"node creates own status", node1, res("create", "nodes", "status", "", "n1"), false},

		// Node writes to pods.
		{"node updates pod status", node1, res("update", "pods", "status", "default", "p"), true},
		{"node patches pod status", node1, res("patch", "pods", "status", "default", "p"), true},
		{"node updates pod", node1, res("update", "pods", "", "default", "p"), false},
		{"node creates pod", node1, res("create", "pods", "", "default", ""), false},
		{"node deletes pod", node1, res("delete", "pods", "", "default", "p"), false},
		{"node binds pod", node1, res("create", "pods", "binding", "default", "p"), false},

		// Events.
		{"node creates event", node1, res("create", "events", "", "default", ""), true},
		{"node patches event", node1, res("patch", "events", "", "default", "e"), true},
		{"node creates events.k8s.io event", node1, auth.Attributes{Verb: "create", APIGroup: "events.k8s.io", Resource: "events", Namespace: "default"}, true},
		{"node deletes event", node1, res("delete", "events", "", "default", "e"), false},
		{"plain creates event", plain, res("create", "events", "", "default", ""), false},

		// ClusterTrustBundles, for projected volumes.
		{"node lists clustertrustbundles", node1, auth.Attributes{Verb: "list", APIGroup: "certificates.k8s.io", Resource: "clustertrustbundles"}, true},
		{"node watches clustertrustbundles", node1, auth.Attributes{Verb: "watch", APIGroup: "certificates.k8s.io", Resource: "clustertrustbundles"}, true},
		{"node gets clustertrustbundle", node1, auth.Attributes{Verb: "get", APIGroup: "certificates.k8s.io", Resource: "clustertrustbundles", Name: "b"}, true},
		{"node creates clustertrustbundle", node1, auth.Attributes{Verb: "create", APIGroup: "certificates.k8s.io", Resource: "clustertrustbundles"}, false},
		{"node deletes clustertrustbundle", node1, auth.Attributes{Verb: "delete", APIGroup: "certificates.k8s.io", Resource: "clustertrustbundles", Name: "b"}, false},
		{"node lists certificatesigningrequests", node1, auth.Attributes{Verb: "list", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests"}, false},
		{"plain lists clustertrustbundles", plain, auth.Attributes{Verb: "list", APIGroup: "certificates.k8s.io", Resource: "clustertrustbundles"}, false},
	}
	var z auth.Authorizer
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := z.Authorize(context.Background(), tc.user, tc.attr)
			if got != tc.want {
				t.Errorf("Authorize(%q, %+v) = %v (%s), want %v", tc.user.Name, tc.attr, got, reason, tc.want)
			}
			if reason == "" {
				t.Errorf("Authorize(%q, %+v) gave no reason", tc.user.Name, tc.attr)
			}
		})
	}
}

func TestAuthorizePodStatusHook(t *testing.T) {
	errBroken := errors.New("store unavailable")
	bound := map[string]string{"default/mine": "n1", "default/theirs": "n2", "default/pending": ""}
	var calls int
	z := auth.Authorizer{Pods: auth.PodNodeFunc(func(ctx context.Context, ns, name string) (string, error) {
		calls++
		if ns == "broken" {
			return "", errBroken
		}
		n, ok := bound[ns+"/"+name]
		if !ok {
			return "", errors.New("not found")
		}
		return n, nil
	})}
	tests := []struct {
		name      string
		attr      auth.Attributes
		want      bool
		wantCalls int
	}{
		{"own pod", res("update", "pods", "status", "default", "mine"), true, 1},
		{"own pod patch", res("patch", "pods", "status", "default", "mine"), true, 1},
		{"other node's pod", res("update", "pods", "status", "default", "theirs"), false, 1},
		{"unbound pod", res("patch", "pods", "status", "default", "pending"), false, 1},
		{"missing pod", res("update", "pods", "status", "default", "gone"), false, 1},
		{"lookup error", res("update", "pods", "status", "broken", "x"), false, 1},
		{"no name", res("update", "pods", "status", "default", ""), false, 0},
		{"reads are not narrowed", res("get", "pods", "", "default", "theirs"), true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls = 0
			got, reason := z.Authorize(context.Background(), node1, tc.attr)
			if got != tc.want || calls != tc.wantCalls {
				t.Errorf("Authorize(%+v) = %v (%s) after %d lookups, want %v after %d", tc.attr, got, reason, calls, tc.want, tc.wantCalls)
			}
		})
	}
	// Masters skip the lookup.
	calls = 0
	if ok, _ := z.Authorize(context.Background(), master, res("update", "pods", "status", "broken", "x")); !ok || calls != 0 {
		t.Errorf("master pod status update = %v after %d lookups, want true after 0", ok, calls)
	}
}

func TestNodeName(t *testing.T) {
	tests := []struct {
		user   auth.User
		want   string
		wantOK bool
	}{
		{node1, "n1", true},
		{fakeNode, "", false},
		{nameless, "", false},
		{master, "", false},
		{auth.User{Name: "system:nodes:n1", Groups: []string{auth.GroupNodes}}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.user.Name, func(t *testing.T) {
			got, ok := auth.NodeName(tc.user)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("NodeName(%+v) = %q, %v; want %q, %v", tc.user, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestUserContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := auth.UserFrom(ctx); ok {
		t.Errorf("UserFrom(empty context) ok = true")
	}
	got, ok := auth.UserFrom(auth.WithUser(ctx, node1))
	if !ok || got.Name != node1.Name {
		t.Errorf("UserFrom(WithUser(node1)) = %+v, %v", got, ok)
	}
	if auth.Anonymous.Authenticated() || (auth.User{}).Authenticated() || !plain.Authenticated() {
		t.Errorf("Authenticated() wrong for anonymous, empty or plain user")
	}
}
