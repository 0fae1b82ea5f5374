package registry

import "strings"

// The store key layout. Every object the API serves lives at
// Root+STORAGE+"/"+NAME (cluster-scoped) or Root+STORAGE+"/"+NS+"/"+NAME
// (namespaced), STORAGE being the resource's StorageName; the records of
// the allocators and node bindings live beside them, under names no
// resource takes.
const (
	// Root is the prefix of every key the server keeps for the API.
	Root = "/registry/"
	// ServiceIPsPrefix records the allocated Service cluster IPs: one key
	// per address, holding its owner.
	ServiceIPsPrefix = Root + "ranges/serviceips/"
	// NodePortsPrefix records the allocated NodePorts: one key per port.
	NodePortsPrefix = Root + "ranges/servicenodeports/"
	// PodCIDRsPrefix records the nodes' podCIDRs: one key per range
	// ("10.42.3.0-24").
	PodCIDRsPrefix = Root + "ranges/podcidrs/"
	// NodePasswordsPrefix binds a node name to the password of the
	// agent that registered it.
	NodePasswordsPrefix = Root + "minik/nodepasswords/"
)

// StoragePrefix covers every object stored under storage, the
// StorageName of a resource ("pods" → "/registry/pods/").
func StoragePrefix(storage string) string { return Root + storage + "/" }

// ObjectKey is where the object named name in namespace ("" for a
// cluster-scoped one) of the resource stored under storage lives.
func ObjectKey(storage, namespace, name string) string {
	if namespace == "" {
		return Root + storage + "/" + name
	}
	return Root + storage + "/" + namespace + "/" + name
}

// Key is where an object of r lives in the store (a view's objects where
// those of the resource it views live).
func (r *Resource) Key(namespace, name string) string {
	if r.Namespaced {
		return Root + r.StorageName() + "/" + namespace + "/" + name
	}
	return Root + r.StorageName() + "/" + name
}

// Prefix covers every object of r in namespace ("" = all).
func (r *Resource) Prefix(namespace string) string {
	if r.Namespaced && namespace != "" {
		return Root + r.StorageName() + "/" + namespace + "/"
	}
	return StoragePrefix(r.StorageName())
}

// ParseKey splits the key of a namespaced object stored under storage
// into its namespace and name; ok is false for a key of another resource
// or of another shape.
func ParseKey(storage, key string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(key, StoragePrefix(storage))
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, "/")
	return namespace, name, ok && namespace != "" && name != ""
}

// ParseClusterKey returns the name in the key of a cluster-scoped object
// stored under storage; ok is false for a key of another resource or of
// another shape.
func ParseClusterKey(storage, key string) (name string, ok bool) {
	name, found := strings.CutPrefix(key, StoragePrefix(storage))
	return name, found && name != "" && !strings.Contains(name, "/")
}
