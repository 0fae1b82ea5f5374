package apiserver

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
)

// Admitter is an Authorizer that also decides a write on the object it
// would store (auth.Authorizer is one). Admit sees obj as the request made
// it, before the server fills in what it owns, and old, the current
// object (nil for a create); it must change neither.
type Admitter interface {
	Admit(ctx context.Context, u auth.User, a auth.Attributes, obj, old runtime.Object) (allowed bool, reason string)
}

// writeKey is the context key of the write request a handler serves.
type writeKey struct{}

// writeRequest is a create, update or patch being served, for admit.
type writeRequest struct {
	user auth.User
	info requestInfo
	// named is false for a create whose authorization waits for the name
	// of the object its body decodes to.
	named bool
}

// withWrite returns ctx carrying the write request w, whose user the
// Authorizer has allowed info's verb on its resource.
func withWrite(ctx context.Context, w *writeRequest) context.Context {
	return context.WithValue(ctx, writeKey{}, w)
}

// isWrite reports whether verb writes an object that admit decides.
func isWrite(verb string) bool {
	return verb == "create" || verb == "update" || verb == "patch"
}

// createNameDeferred reports whether a create by u is authorized only once
// its body is decoded: a node's create of a Node, the one rule that
// depends on the created object's name. Deciding on the decoded object,
// not on a second reading of the body, means the name authorized is the
// name stored.
func createNameDeferred(u auth.User, info requestInfo) bool {
	_, isNode := auth.NodeName(u)
	return isNode && info.Verb == "create" && info.Name == "" && info.Resource.Name == "nodes"
}

// admit decides a write of obj over old (nil for a create) of res by the
// request ctx carries: the deferred authorization of a create by the
// decoded object's name, then the Authorizer's admission rules if it has
// any. Writes the server makes of its own accord, and writes of another
// resource than the request's, pass. A denial is a 403 Forbidden Status
// naming the rule.
func (s *Server) admit(ctx context.Context, res *registry.Resource, obj, old runtime.Object) error {
	w, ok := ctx.Value(writeKey{}).(*writeRequest)
	if !ok || s.cfg.Authorizer == nil || w.info.Resource != res {
		return nil
	}
	info := w.info
	if old == nil {
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		info.Name = m.GetName()
	}
	attrs := resourceAttributes(info)
	if old == nil && !w.named {
		if err := s.authorizeResource(ctx, w.user, info, attrs); err != nil {
			return err
		}
	}
	ad, ok := s.cfg.Authorizer.(Admitter)
	if !ok {
		return nil
	}
	allowed, reason := ad.Admit(ctx, w.user, attrs, obj, old)
	if allowed {
		return nil
	}
	return apierrors.NewForbidden(schemaGR(res.Name), info.Name, forbiddenReason(w.user, info, reason))
}
