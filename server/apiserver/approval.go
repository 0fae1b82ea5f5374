package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
)

// serveApproval serves the approval subresource of a kind that has one
// (CertificateSigningRequest): get, and writes that change only the
// approval conditions.
func (s *Server) serveApproval(w *statusRecorder, r *http.Request, info requestInfo) error {
	gr := schema.GroupResource{Resource: info.Resource.Name}
	if info.Resource.Approval == nil {
		return apierrors.NewNotFound(gr, info.Name+"/approval")
	}
	switch info.Verb {
	case "get":
		obj, _, err := s.getObject(r.Context(), info.Resource, info.Namespace, info.Name)
		if err != nil {
			return err
		}
		return s.writeObject(w, r, info.Resource, http.StatusOK, obj)
	case "update":
		return s.serveUpdate(w, r, info, updateApproval)
	case "patch":
		return s.servePatch(w, r, info, updateApproval)
	}
	return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: info.Resource.Name + "/approval"}, info.Verb)
}

// prepareForCreate clears and defaults a new object as its kind says,
// and records the caller as the requester of a CertificateSigningRequest.
func prepareForCreate(ctx context.Context, res *registry.Resource, obj runtime.Object) {
	res.PrepareForCreate(obj)
	if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
		if u, ok := auth.UserFrom(ctx); ok {
			registry.SetRequester(csr, u.Name, u.UID, u.Groups, u.Extra)
		}
	}
}

// authorizeSigner asks, as Kubernetes does, whether the caller may act
// for the signer of a certificate request whose outcome it writes: the
// verb "approve" for any write of a CSR's approval, "sign" for a status
// write that changes a CSR's certificate or conditions or a
// PodCertificateRequest's status. The permission is on the resource
// "signers" of certificates.k8s.io, named as the signer or as its domain
// followed by "/*". obj is the prepared object, old the stored one.
func (s *Server) authorizeSigner(ctx context.Context, kind updateKind, obj, old runtime.Object) error {
	if s.cfg.Authorizer == nil || kind == updateMain || kind == updateRaw {
		return nil
	}
	var verb, signer string
	pcr := false
	switch o := old.(type) {
	case *certificatesv1.CertificateSigningRequest:
		n := obj.(*certificatesv1.CertificateSigningRequest)
		switch {
		case kind == updateApproval:
			verb = "approve"
		case !bytes.Equal(n.Status.Certificate, o.Status.Certificate) || !apiequality.Semantic.DeepEqual(n.Status.Conditions, o.Status.Conditions):
			verb = "sign"
		}
		signer = o.Spec.SignerName
	case *certificatesv1.PodCertificateRequest:
		if !apiequality.Semantic.DeepEqual(obj.(*certificatesv1.PodCertificateRequest).Status, o.Status) {
			verb = "sign"
		}
		signer, pcr = o.Spec.SignerName, true
	}
	if verb == "" {
		return nil
	}
	u, _ := auth.UserFrom(ctx)
	domain, _, _ := strings.Cut(signer, "/")
	for _, name := range []string{signer, domain + "/*"} {
		a := auth.Attributes{Verb: verb, APIGroup: registry.GroupCertificates, Resource: "signers", Name: name}
		if ok, _ := s.cfg.Authorizer.Authorize(ctx, u, a); ok {
			return nil
		}
	}
	msg := fmt.Sprintf("user not permitted to %s requests with signerName %q", verb, signer)
	m, _ := old.(interface{ GetName() string })
	if pcr {
		return apierrors.NewInvalid(schema.GroupKind{Group: registry.GroupCertificates, Kind: "PodCertificateRequest"}, m.GetName(),
			field.ErrorList{field.Forbidden(field.NewPath("spec", "signerName"), fmt.Sprintf("User %q is not permitted to %q for signer %q", u.Name, verb, signer))})
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: registry.GroupCertificates, Resource: "certificatesigningrequests"}, m.GetName(), fmt.Errorf("%s", msg))
}
