package apiserver

import (
	"context"
	"net/http"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

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
