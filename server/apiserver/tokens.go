package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/server/serviceaccount"
)

// Service account tokens (POST serviceaccounts/NAME/token) are signed by
// Config.ServiceAccounts for the service account read from the store,
// optionally bound to a pod or a secret of its namespace, which must
// exist (and have the uid the request names, if any).

var tokenRequestGK = schema.GroupKind{Group: authenticationv1.GroupName, Kind: "TokenRequest"}

// serviceAccountsResource is the registry's serviceaccounts.
func serviceAccountsResource() *registry.Resource {
	res, _ := registry.Lookup("serviceaccounts")
	return res
}

// readObject reads the object of resource named namespace/name ("" for a
// cluster-scoped one) from the shared decoded objects: read-only. A
// missing object is store.ErrNotFound.
func (s *Server) readObject(ctx context.Context, resource, namespace, name string) (runtime.Object, error) {
	res, ok := registry.Lookup(resource)
	if !ok {
		return nil, fmt.Errorf("reading %s: not a served resource", resource)
	}
	kv, err := s.store.Get(ctx, storageKey(res, namespace, name))
	if err != nil {
		return nil, err
	}
	return s.decodeShared(res, kv.Key, kv.Value, kv.ModRevision)
}

// ObjectUID implements serviceaccount.Getter over the store.
func (s *Server) ObjectUID(ctx context.Context, resource, namespace, name string) (string, time.Time, error) {
	obj, err := s.readObject(ctx, resource, namespace, name)
	if err != nil {
		return "", time.Time{}, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", time.Time{}, err
	}
	var deleted time.Time
	if ts := m.GetDeletionTimestamp(); ts != nil {
		deleted = ts.Time
	}
	return string(m.GetUID()), deleted, nil
}

var _ serviceaccount.Getter = (*Server)(nil)

// serveTokenRequest issues a token for a service account.
func (s *Server) serveTokenRequest(w *statusRecorder, r *http.Request, info requestInfo) error {
	if s.cfg.ServiceAccounts == nil {
		return notFoundPath(r.URL.Path)
	}
	if info.Verb != "create" {
		return apierrors.NewMethodNotSupported(schemaGR("serviceaccounts/token"), info.Verb)
	}
	tr, err := decodeTokenRequest(w, r, info.Name)
	if err != nil {
		return err
	}
	ctx := r.Context()
	saObj, err := s.readObject(ctx, "serviceaccounts", info.Namespace, info.Name)
	if err != nil {
		return statusFor(err, schemaGR("serviceaccounts"), info.Name)
	}
	sa := saObj.(*corev1.ServiceAccount)
	now := s.cfg.Now()
	c := serviceaccount.Claims{
		ID: uuid.NewString(), Audiences: tr.Spec.Audiences, IssuedAt: now, NotBefore: now,
		Expiry:    now.Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second),
		Namespace: info.Namespace, ServiceAccount: serviceaccount.Ref{Name: sa.Name, UID: string(sa.UID)},
	}
	if len(c.Audiences) == 0 {
		c.Audiences = s.apiAudiences()
	}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		if err := s.bindToken(ctx, &c, info.Name, ref); err != nil {
			return err
		}
	}
	token, err := s.cfg.ServiceAccounts.Issue(c)
	if err != nil {
		return err
	}
	tr.TypeMeta = metav1.TypeMeta{Kind: "TokenRequest", APIVersion: authenticationv1.SchemeGroupVersion.String()}
	tr.ObjectMeta = metav1.ObjectMeta{Name: info.Name, Namespace: info.Namespace, CreationTimestamp: metav1.NewTime(now.Truncate(time.Second))}
	tr.Spec.Audiences = c.Audiences
	tr.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(c.Expiry.Truncate(time.Second))}
	writeJSON(w, http.StatusCreated, tr)
	return nil
}

// decodeTokenRequest reads, defaults and validates the TokenRequest in
// r's body, for service account name.
func decodeTokenRequest(w *statusRecorder, r *http.Request, name string) (*authenticationv1.TokenRequest, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var tr authenticationv1.TokenRequest
	if err := strictDecode(w, r, data, &tr); err != nil {
		return nil, err
	}
	if tr.Spec.ExpirationSeconds == nil {
		tr.Spec.ExpirationSeconds = ptr.To(int64(serviceaccount.DefaultExpiration / time.Second))
	}
	if errs := validateTokenRequest(&tr); len(errs) > 0 {
		return nil, apierrors.NewInvalid(tokenRequestGK, name, errs)
	}
	return &tr, nil
}

// validateTokenRequest checks a TokenRequest's spec as Kubernetes does.
func validateTokenRequest(tr *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	switch secs := *tr.Spec.ExpirationSeconds; {
	case secs < int64(serviceaccount.MinExpiration/time.Second):
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), secs, "may not specify a duration less than 10 minutes"))
	case secs > serviceaccount.MaxExpirationSeconds:
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), secs, "may not specify a duration larger than 2^32 seconds"))
	}
	for i, a := range tr.Spec.Audiences {
		if a == "" {
			errs = append(errs, field.Required(spec.Child("audiences").Index(i), "must not be empty"))
		}
	}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		p := spec.Child("boundObjectRef")
		if ref.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if ref.Kind == "" {
			errs = append(errs, field.Required(p.Child("kind"), ""))
		}
	}
	return errs
}

// bindToken binds the token c describes, for service account saName, to
// the object ref names: a pod running as that service account (and its
// node), or a secret.
func (s *Server) bindToken(ctx context.Context, c *serviceaccount.Claims, saName string, ref *authenticationv1.BoundObjectReference) error {
	gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
	var resource string
	switch {
	case gvk.Group == "" && gvk.Kind == "Pod":
		resource = "pods"
	case gvk.Group == "" && gvk.Kind == "Secret":
		resource = "secrets"
	default:
		return badRequest("cannot bind token to object of type %s", gvk.String())
	}
	obj, err := s.readObject(ctx, resource, c.Namespace, ref.Name)
	if err != nil {
		return statusFor(err, schemaGR(resource), ref.Name)
	}
	m, _ := meta.Accessor(obj)
	if ref.UID != "" && ref.UID != m.GetUID() {
		return apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ref.Name,
			fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", ref.UID, m.GetUID()))
	}
	bound := &serviceaccount.Ref{Name: m.GetName(), UID: string(m.GetUID())}
	pod, isPod := obj.(*corev1.Pod)
	if !isPod {
		c.Secret = bound
		return nil
	}
	if pod.Spec.ServiceAccountName != saName {
		return badRequest("cannot bind token for serviceaccount %q to pod running with serviceaccount %q", saName, pod.Spec.ServiceAccountName)
	}
	c.Pod = bound
	if node := pod.Spec.NodeName; node != "" {
		c.Node = &serviceaccount.Ref{Name: node}
		// A node that cannot be read leaves its uid out, as in Kubernetes.
		if uid, _, err := s.ObjectUID(ctx, "nodes", "", node); err == nil {
			c.Node.UID = uid
		}
	}
	return nil
}

// apiAudiences are the audiences of tokens the API accepts.
func (s *Server) apiAudiences() []string {
	if len(s.cfg.APIAudiences) > 0 {
		return s.cfg.APIAudiences
	}
	return []string{s.cfg.ServiceAccounts.URL()}
}
