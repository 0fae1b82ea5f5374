package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// objectClient applies and deletes objects of any kind, found through
// discovery. It speaks JSON: the objects are unstructured.
type objectClient struct {
	rest   rest.Interface
	mapper meta.ResettableRESTMapper
}

func newObjectClient(loopback *rest.Config) (*objectClient, error) {
	cfg := rest.CopyConfig(loopback)
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &objectClient{rest: rc, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}, nil
}

// mapping finds the resource of u's kind and sets u's namespace as the
// resource's scope needs (default for a namespaced object without one,
// none for a cluster-scoped one). It returns a meta.NoKindMatchError for a
// kind the API does not serve; reset forgets what discovery said first.
func (c *objectClient) mapping(u *unstructured.Unstructured, reset bool) (*meta.RESTMapping, error) {
	if reset {
		c.mapper.Reset()
	}
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if u.GetNamespace() == "" {
			u.SetNamespace(metav1.NamespaceDefault)
		}
	} else {
		u.SetNamespace("")
	}
	return m, nil
}

// apply applies u (server-side apply, forced, as FieldManager) and
// returns the object as stored and whether the apply created it. With
// dryRun the API checks and admits it but stores nothing.
func (c *objectClient) apply(ctx context.Context, m *meta.RESTMapping, u *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, bool, error) {
	body, err := json.Marshal(u.Object)
	if err != nil {
		return nil, false, err
	}
	req := c.rest.Patch(types.ApplyPatchType).
		AbsPath(objectPath(m.Resource.GroupVersion(), m.Resource.Resource, u.GetNamespace(), u.GetName())).
		Param("fieldManager", FieldManager).Param("force", "true").
		Body(body)
	if dryRun {
		req = req.Param("dryRun", metav1.DryRunAll)
	}
	res := req.Do(ctx)
	var code int
	res.StatusCode(&code)
	raw, err := res.Raw()
	if err != nil {
		// Error (unlike Raw) decodes the Status the API answered with.
		return nil, false, res.Error()
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(raw); err != nil {
		return nil, false, fmt.Errorf("decoding the applied %s: %w", m.Resource.Resource, err)
	}
	return out, code == http.StatusCreated, nil
}

// delete deletes the object r names if it is still the one r recorded
// (same UID); an object already gone or replaced is no error.
func (c *objectClient) delete(ctx context.Context, r ref) error {
	uid := r.UID
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{
		TypeMeta:          metav1.TypeMeta{APIVersion: "v1", Kind: "DeleteOptions"},
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: &background,
	}
	body, err := json.Marshal(opts)
	if err != nil {
		return err
	}
	err = c.rest.Delete().AbsPath(objectPath(r.groupVersion(), r.Resource, r.Namespace, r.Name)).Body(body).Do(ctx).Error()
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return fmt.Errorf("deleting %s: %w", r, err)
}

// objectPath is the API path of an object.
func objectPath(gv schema.GroupVersion, resource, namespace, name string) string {
	p := path.Join("/apis", gv.Group, gv.Version)
	if gv.Group == "" {
		p = path.Join("/api", gv.Version)
	}
	if namespace != "" {
		p = path.Join(p, "namespaces", namespace)
	}
	return path.Join(p, resource, name)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
