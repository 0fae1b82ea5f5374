package registry

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// View makes a resource serve the stored objects of another one, in
// another group or version, as upstream serves one storage under several
// (events.k8s.io/v1 Event over core/v1 Event). The two share keys and the
// stored form; a view has its own rules (defaults, validation, fields,
// table), applied to its own type, and objects are converted as they are
// stored and read. Neither the API server's caches of stored objects nor
// its responses made from stored bytes may be shared between the two.
type View struct {
	// Of is the resource whose objects are stored.
	Of *Resource
	// ToStored converts an object of the view to one of Of; FromStored
	// the other way. Neither modifies its argument.
	ToStored   func(obj runtime.Object) runtime.Object
	FromStored func(obj runtime.Object) runtime.Object
}

// StorageName is the name the resource's objects are stored under: its
// own, or that of the resource it is a view of.
func (r *Resource) StorageName() string {
	if r.Custom != nil {
		// Custom kinds of different groups may share a plural.
		return r.Group + "/" + r.Name
	}
	if r.View != nil {
		return r.View.Of.Name
	}
	return r.Name
}

// DecodeStoredAs decodes a stored value (see DecodeStored) into a new
// object of res, converting it when res is a view.
func DecodeStoredAs(res *Resource, value []byte) (runtime.Object, error) {
	if res.Custom != nil {
		return DecodeCustom(res, value)
	}
	if res.View == nil {
		obj := res.New()
		return obj, DecodeStored(value, obj)
	}
	stored := res.View.Of.New()
	if err := DecodeStored(value, stored); err != nil {
		return nil, err
	}
	obj := res.View.FromStored(stored)
	if obj == nil {
		return nil, fmt.Errorf("converting a stored %s to %s: wrong type %T", res.View.Of.Kind, res.GroupVersion(), stored)
	}
	return obj, nil
}
