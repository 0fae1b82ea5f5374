package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/auth"
)

// BindPod assigns the pod b names to the node b.Target.Name as user u, in
// process: what a POST of pods/NAME/binding by u does, without encoding a
// request and a response. It applies u's authorization, the binding rules
// (a pod being deleted or already bound, or whose UID differs from a
// non-empty b.UID, is a 409 Conflict; an empty target a 422 Invalid), the
// stored form, retries when another write got in between, and the request
// metrics, counted as a create of pods. b is not retained.
//
// Errors are *apierrors.StatusError as the REST API answers them; context
// errors are returned as they are. It is safe for concurrent use.
func (s *Server) BindPod(ctx context.Context, u auth.User, b *corev1.Binding) (err error) {
	start := time.Now()
	info := requestInfo{Verb: "create", Resource: podsResource, Namespace: b.Namespace, Name: b.Name, Subresource: "binding"}
	defer func() { s.observeInProcess(info, http.StatusCreated, err, time.Since(start)) }()
	u = withGroup(u, auth.GroupAuthenticated)
	if err := s.authorizeResource(ctx, u, info, resourceAttributes(info)); err != nil {
		return err
	}
	if err := validateBinding(b); err != nil {
		return err
	}
	_, err = s.updateObject(ctx, podsResource, b.Namespace, b.Name, updateRaw, false,
		func(cur runtime.Object) (runtime.Object, error) { return bindPod(cur.(*corev1.Pod), *b, s.cfg.Now()) })
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return statusFor(err, schemaGR(podsResource.Name), b.Name)
}

// validateBinding checks what a binding must name besides its pod.
func validateBinding(b *corev1.Binding) error {
	if b.Target.Name == "" {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Binding"}, b.Name,
			field.ErrorList{field.Required(field.NewPath("target", "name"), "")})
	}
	return nil
}
