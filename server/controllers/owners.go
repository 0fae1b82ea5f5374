package controllers

import (
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// metaPatch writes a JSON merge patch of obj's ownerReferences and/or
// finalizers. The patch carries obj's uid and resourceVersion, so it fails
// with a Conflict when obj changed since it was read (or was replaced by
// another object of the same name).
type metaPatch struct {
	Metadata metaPatchFields `json:"metadata"`
}

type metaPatchFields struct {
	UID             types.UID                `json:"uid"`
	ResourceVersion string                   `json:"resourceVersion"`
	OwnerReferences *[]metav1.OwnerReference `json:"ownerReferences,omitempty"`
	Finalizers      *[]string                `json:"finalizers,omitempty"`
}

// patchOwnerRefs sets the ownerReferences of obj (of the resource, served
// by client)
// to refs.
func patchOwnerRefs(ctx context.Context, client rest.Interface, resource string, obj metav1.Object, refs []metav1.OwnerReference) error {
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	return patchMeta(ctx, client, resource, obj, metaPatchFields{OwnerReferences: &refs})
}

// patchFinalizers sets the finalizers of obj (of the resource, served by
// client) to
// fins.
func patchFinalizers(ctx context.Context, client rest.Interface, resource string, obj metav1.Object, fins []string) error {
	if fins == nil {
		fins = []string{}
	}
	return patchMeta(ctx, client, resource, obj, metaPatchFields{Finalizers: &fins})
}

func patchMeta(ctx context.Context, client rest.Interface, resource string, obj metav1.Object, f metaPatchFields) error {
	f.UID, f.ResourceVersion = obj.GetUID(), obj.GetResourceVersion()
	data, err := json.Marshal(metaPatch{Metadata: f})
	if err != nil {
		return err
	}
	return client.Patch(types.MergePatchType).
		Namespace(obj.GetNamespace()).Resource(resource).Name(obj.GetName()).
		Body(data).Do(ctx).Error()
}

// withoutOwner returns refs without the references to uid.
func withoutOwner(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if r.UID != uid {
			out = append(out, r)
		}
	}
	return out
}
