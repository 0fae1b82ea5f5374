// Package admission runs the admission control that users configure
// through the API: admission webhooks (MutatingWebhookConfiguration,
// ValidatingWebhookConfiguration), and ValidatingAdmissionPolicies and
// MutatingAdmissionPolicies with their bindings, all
// admissionregistration.k8s.io/v1.
//
// # Configuration
//
// Chain holds the configurations as compiled snapshots: Update replaces
// them all at once (the API server feeds it from its watch of the
// registry), so a request never reads the store to learn which webhooks
// or policies apply. CEL expressions are compiled by Update, once per
// change, with server/celexpr (cel-go).
//
// # Order
//
// A write is admitted as in Kubernetes: Mutate applies the matching
// mutating policies (bindings by name, mutations in order), then calls
// the matching mutating webhooks one after the other (configurations by
// name, webhooks in order), applying each JSONPatch response; once all
// have run, a policy binding or webhook with reinvocationPolicy IfNeeded
// that saw an object a later one changed runs once more (policies first). The server then validates the object, and
// Validate evaluates the policies and calls the validating webhooks, the
// latter in parallel. The first denial (in configuration order) is the
// request's error; warnings of every webhook and of Warn policy bindings
// are returned for the Warning header.
//
// # Matching
//
// A webhook is called when one of its rules matches the operation, group,
// version, resource (RESOURCE, RESOURCE/SUBRESOURCE, and the wildcards
// "*", "RESOURCE/*", "*/SUBRESOURCE", "*/*") and scope; its
// namespaceSelector matches the labels of the object's namespace (of a
// Namespace: its own; cluster-scoped objects always match); its
// objectSelector matches the object's or the old object's labels; and all
// of its matchConditions are true. minik serves one version per group, so
// matchPolicy Exact and Equivalent select the same requests. Objects of
// admissionregistration.k8s.io are never sent to webhooks or policies,
// which keeps a broken webhook from locking out its own repair.
//
// # Mutating policies
//
// A MutatingAdmissionPolicy's mutations are CEL expressions
// (server/celexpr) evaluated with object, oldObject, request, params,
// namespaceObject and variables, once per parameter object of the
// binding (once with null params for a binding without paramRef), after
// its matchConditions. Each mutation sees the object the one before it
// made. An ApplyConfiguration builds Object{…}, merged into the object
// as server-side apply merges, by the kind's schema (Schemas), without
// recording field ownership; setting an atomic list, map or struct is an
// error, since what the configuration leaves out would be lost. A
// JSONPatch builds a list of JSONPatch{op, path, value}; a failed test
// operation leaves the object unchanged. A failure under failurePolicy
// Fail denies the request with 403 "policy 'P' with binding 'B' denied
// request: …"; under Ignore the failed mutation is skipped. Deletes are
// never mutated.
//
// # Calls
//
// A webhook gets an AdmissionReview (admission.k8s.io/v1, or v1beta1 for
// a webhook that accepts only that) by POST over HTTPS, its certificate
// verified against caBundle (or the system roots). A url webhook is dialed
// directly; a service webhook through the ServiceDialer, which minik
// answers with a connection to a ready endpoint pod through its node's
// tunnel, with the certificate checked for SERVICE.NAMESPACE.svc. A call
// that fails or outlasts timeoutSeconds denies the request under
// failurePolicy Fail (500 with the webhook's name) and is skipped under
// Ignore. A dry-run request is refused (400) by a matching webhook whose
// sideEffects are Some or Unknown.
package admission
