package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The bootstrap policy: the ClusterRoles and ClusterRoleBindings every
// cluster starts with, as Kubernetes defines them. Reconcile creates
// what is missing and adds what an existing object lacks.

// Labels and annotations of the bootstrap policy.
const (
	// BootstrappingLabel marks the objects of the bootstrap policy.
	BootstrappingLabel = "kubernetes.io/bootstrapping"
	// AutoupdateAnnotation set to "false" keeps Reconcile off an object.
	AutoupdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
	// AggregateLabelPrefix starts the labels that make a ClusterRole's
	// rules part of admin, edit or view ("…aggregate-to-view": "true").
	AggregateLabelPrefix = "rbac.authorization.k8s.io/aggregate-to-"
)

var (
	readVerbs      = []string{"get", "list", "watch"}
	writeVerbs     = []string{"create", "delete", "deletecollection", "patch", "update"}
	readWriteVerbs = append(append([]string(nil), readVerbs...), writeVerbs...)
)

// rule builds a resource rule.
func rule(verbs []string, group string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{group}, Resources: resources}
}

// urls builds a non-resource rule.
func urls(verbs []string, paths ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: paths}
}

func bootstrapMeta(name string, labels map[string]string) metav1.ObjectMeta {
	l := map[string]string{BootstrappingLabel: "rbac-defaults"}
	for k, v := range labels {
		l[k] = v
	}
	return metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{AutoupdateAnnotation: "true"}}
}

func aggregateTo(role string) map[string]string {
	return map[string]string{AggregateLabelPrefix + role: "true"}
}

func aggregating(role string) *rbacv1.AggregationRule {
	return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: aggregateTo(role)}}}
}

// ClusterRoles returns the bootstrap ClusterRoles, new objects the caller
// may change.
func ClusterRoles() []*rbacv1.ClusterRole {
	get := []string{"get"}
	return []*rbacv1.ClusterRole{
		{
			ObjectMeta: bootstrapMeta("cluster-admin", nil),
			Rules:      []rbacv1.PolicyRule{rule([]string{"*"}, "*", "*"), urls([]string{"*"}, "*")},
		},
		{
			ObjectMeta: bootstrapMeta("system:discovery", nil),
			Rules: []rbacv1.PolicyRule{urls(get, "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
				"/openapi", "/openapi/*", "/readyz", "/version", "/version/")},
		},
		{
			ObjectMeta: bootstrapMeta("system:public-info-viewer", nil),
			Rules:      []rbacv1.PolicyRule{urls(get, "/healthz", "/livez", "/readyz", "/version", "/version/")},
		},
		{
			ObjectMeta: bootstrapMeta("system:basic-user", nil),
			Rules: []rbacv1.PolicyRule{
				rule([]string{"create"}, "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
				rule([]string{"create"}, "authentication.k8s.io", "selfsubjectreviews"),
			},
		},
		{
			ObjectMeta: bootstrapMeta("system:service-account-issuer-discovery", nil),
			Rules:      []rbacv1.PolicyRule{urls(get, "/.well-known/openid-configuration", "/openid/v1/jwks")},
		},
		{ObjectMeta: bootstrapMeta("admin", nil), AggregationRule: aggregating("admin")},
		{ObjectMeta: bootstrapMeta("edit", aggregateTo("admin")), AggregationRule: aggregating("edit")},
		{ObjectMeta: bootstrapMeta("view", aggregateTo("edit")), AggregationRule: aggregating("view")},
		{
			ObjectMeta: bootstrapMeta("system:aggregate-to-admin", aggregateTo("admin")),
			Rules: []rbacv1.PolicyRule{
				rule([]string{"create"}, "authorization.k8s.io", "localsubjectaccessreviews"),
				rule(readWriteVerbs, "rbac.authorization.k8s.io", "rolebindings", "roles"),
			},
		},
		{ObjectMeta: bootstrapMeta("system:aggregate-to-edit", aggregateTo("edit")), Rules: editRules()},
		{ObjectMeta: bootstrapMeta("system:aggregate-to-view", aggregateTo("view")), Rules: viewRules()},
	}
}

// editRules are what edit adds to view: writes of a namespace's
// workloads and configuration, Secrets included, and acting as its
// service accounts; not its roles, bindings or quotas.
func editRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule([]string{"impersonate"}, "", "serviceaccounts"),
		rule(writeVerbs, "", "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
		rule([]string{"create"}, "", "pods/eviction"),
		rule(writeVerbs, "", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
		rule([]string{"create"}, "", "serviceaccounts/token"),
		rule(readVerbs, "", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"),
		rule(writeVerbs, "apps", "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
			"replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"),
		rule(writeVerbs, "autoscaling", "horizontalpodautoscalers"),
		rule(writeVerbs, "batch", "cronjobs", "jobs"),
		rule(writeVerbs, "policy", "poddisruptionbudgets"),
		rule(writeVerbs, "networking.k8s.io", "ingresses", "networkpolicies"),
		rule(writeVerbs, "discovery.k8s.io", "endpointslices"),
		rule(writeVerbs, "coordination.k8s.io", "leases"),
		rule(writeVerbs, "events.k8s.io", "events"),
		rule(writeVerbs, "resource.k8s.io", "resourceclaims", "resourceclaimtemplates"),
	}
}

// viewRules are view's: reads of a namespace's objects but its Secrets,
// roles and bindings.
func viewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(readVerbs, "", "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"),
		rule(readVerbs, "", "limitranges", "resourcequotas", "bindings", "events", "pods/status",
			"resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"),
		rule(readVerbs, "", "namespaces"),
		rule(readVerbs, "discovery.k8s.io", "endpointslices"),
		rule(readVerbs, "apps", "controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
			"deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
			"statefulsets", "statefulsets/scale", "statefulsets/status"),
		rule(readVerbs, "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
		rule(readVerbs, "batch", "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
		rule(readVerbs, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
		rule(readVerbs, "networking.k8s.io", "ingresses", "ingresses/status", "networkpolicies"),
		rule(readVerbs, "coordination.k8s.io", "leases"),
		rule(readVerbs, "events.k8s.io", "events"),
		rule(readVerbs, "resource.k8s.io", "resourceclaims", "resourceclaims/status", "resourceclaimtemplates"),
	}
}

// ExtensionAuthenticationConfigMap is the ConfigMap in kube-system that
// tells aggregated API servers and webhooks how to authenticate the API
// server's requests (client CA, front-proxy CA and headers).
const ExtensionAuthenticationConfigMap = "extension-apiserver-authentication"

// Roles returns the bootstrap Roles of namespaces, new objects the caller
// may change.
func Roles() []*rbacv1.Role {
	reader := bootstrapMeta("extension-apiserver-authentication-reader", nil)
	reader.Namespace = metav1.NamespaceSystem
	return []*rbacv1.Role{{
		// Servers that authenticate the API server's requests read how.
		ObjectMeta: reader,
		Rules: []rbacv1.PolicyRule{{
			Verbs: readVerbs, APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{ExtensionAuthenticationConfigMap},
		}},
	}}
}

// ClusterRoleBindings returns the bootstrap ClusterRoleBindings, new
// objects the caller may change.
func ClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	group := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
	}
	bind := func(role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: bootstrapMeta(role, nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   subjects,
		}
	}
	return []*rbacv1.ClusterRoleBinding{
		bind("cluster-admin", group("system:masters")),
		bind("system:discovery", group("system:authenticated")),
		bind("system:basic-user", group("system:authenticated")),
		bind("system:public-info-viewer", group("system:authenticated"), group("system:unauthenticated")),
		bind("system:service-account-issuer-discovery", group("system:serviceaccounts")),
	}
}
