package registry

import "testing"

// Keys built for a resource parse back into its namespace and name, and
// a view's objects live where those of the resource it views do.
func TestKeys(t *testing.T) {
	pods, _ := Lookup("pods")
	nodes, _ := Lookup("nodes")
	events, _ := LookupIn("events.k8s.io", "events")
	tests := []struct {
		name, got, want string
	}{
		{"pod key", pods.Key("default", "web"), "/registry/pods/default/web"},
		{"node key", nodes.Key("", "n1"), "/registry/nodes/n1"},
		{"pods of a namespace", pods.Prefix("default"), "/registry/pods/default/"},
		{"pods of every namespace", pods.Prefix(""), "/registry/pods/"},
		{"nodes, namespace ignored", nodes.Prefix("default"), "/registry/nodes/"},
		{"events.k8s.io event key", events.Key("default", "e"), "/registry/events/default/e"},
		{"object key", ObjectKey("serviceaccounts", "kube-system", "default"), "/registry/serviceaccounts/kube-system/default"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if ns, name, ok := ParseKey("pods", pods.Key("default", "web")); !ok || ns != "default" || name != "web" {
		t.Errorf("ParseKey(pods, pod key) = %q, %q, %v; want default, web, true", ns, name, ok)
	}
	for _, key := range []string{"/registry/services/default/web", "/registry/pods/default", "/registry/pods/default/", "/registry/pods//web"} {
		if ns, name, ok := ParseKey("pods", key); ok {
			t.Errorf("ParseKey(pods, %q) = %q, %q, true; want not ok", key, ns, name)
		}
	}
	if name, ok := ParseClusterKey("nodes", nodes.Key("", "n1")); !ok || name != "n1" {
		t.Errorf("ParseClusterKey(nodes, node key) = %q, %v; want n1, true", name, ok)
	}
	for _, key := range []string{"/registry/nodes/", "/registry/nodes/a/b", "/registry/pods/n1"} {
		if name, ok := ParseClusterKey("nodes", key); ok {
			t.Errorf("ParseClusterKey(nodes, %q) = %q, true; want not ok", key, name)
		}
	}
}
