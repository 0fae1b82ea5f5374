// Package registry holds everything kind-specific about the core/v1
// resources minik serves: defaults, the create/update rules for status and
// generation, validation, field selectors, table printing and scaling.
// The API server is generic and reaches each kind through a [Resource].
//
// # What the API server does, and what this package does
//
// The API server owns the metadata every kind shares: uid,
// creationTimestamp, resourceVersion and its preconditions, name
// generation, deletion, and allocation (service cluster IPs and node
// ports). It calls the funcs of a Resource in this order:
//
//	create:        PrepareForCreate → ValidateCreate
//	update:        PrepareForUpdate → ValidateUpdate
//	status update: PrepareForStatusUpdate → ValidateStatusUpdate
//
// This package handles:
//
//   - status on create: cleared for services and replication controllers,
//     reset to Pending (with the computed QoS class) for pods and to Active
//     for namespaces; nodes keep the status their agent creates them with.
//   - metadata.generation: 1 on create for kinds with a spec (pods,
//     services, replication controllers, nodes, namespaces, and pod
//     templates, whose template counts as their spec); on update it is
//     old's generation, plus one when the spec changed; status updates
//     keep old's generation. Kinds without a spec (ConfigMaps, Secrets,
//     ServiceAccounts, Endpoints) keep it as created.
//   - write-only fields: a Secret's stringData is merged into data on
//     every write and never stored.
//   - defaults, written after the Kubernetes defaulters and admission
//     plugins (DefaultTolerationSeconds, Priority) the user would expect.
//   - validation of metadata, spec and status, with paths relative to the
//     object ("spec.containers[0].image") and the error types Kubernetes
//     uses. metadata.resourceVersion is not checked here.
//
// # Versions
//
// A built-in Resource is served in one group-version (Resource.Version, v1
// unless set). A kind served in several versions has one Resource per
// version: the one whose objects are stored, and a View of it for each
// other version, converting objects as they are read and written
// (autoscaling/v1 HorizontalPodAutoscaler over the stored v2, hpav1.go;
// events.k8s.io/v1 Event over the core one). Versions lists a group's
// versions, the preferred first; LookupVersion finds the Resource of a
// group-version.
//
// # Custom resources
//
// CustomResourceDefinition is a built-in kind here (crd.go), validated
// with upstream's rules. NewCustom builds the Resource serving one version
// of a definition: its objects are *unstructured.Unstructured, pruned,
// defaulted and validated by the definition's structural schema with
// upstream's libraries (custom.go), and stored as JSON in the storage
// version. The API server keeps the set of custom resources it serves.
//
// # Tables
//
// Columns and Row follow kubectl's printers, so `kubectl get` looks as it
// does against Kubernetes; [Resource.Table] builds a whole metav1.Table.
package registry
