package rbac

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// prefixes are the store keys of the four RBAC kinds, in watch order.
var prefixes = [4]string{
	"/registry/clusterroles/", "/registry/roles/",
	"/registry/clusterrolebindings/", "/registry/rolebindings/",
}

// Authorizer decides requests by the cluster's Roles, ClusterRoles,
// RoleBindings and ClusterRoleBindings, kept in memory: Load reads them,
// Run follows the store's watch of them. Authorize is safe for concurrent
// use and costs map lookups, not a walk over every binding.
type Authorizer struct {
	st  store.Store
	log *slog.Logger

	mu  sync.RWMutex
	idx *index // guarded by mu
	rev int64  // guarded by mu; the revision idx reflects
}

// New returns an Authorizer over st that knows no role until Load.
func New(st store.Store, lg *slog.Logger) *Authorizer {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{st: st, log: lg.With("component", "rbac"), idx: newIndex()}
}

// Load reads every role and binding as of the current revision.
func (z *Authorizer) Load(ctx context.Context) error {
	rev, err := z.st.CurrentRevision(ctx)
	if err != nil {
		return err
	}
	x := newIndex()
	for _, p := range prefixes {
		kvs, _, err := z.st.List(ctx, p, rev)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := apply(x, store.Event{Type: store.EventCreate, Key: kv.Key, Value: kv.Value}); err != nil {
				z.log.Warn("skipping undecodable object", "key", kv.Key, "err", err)
			}
		}
	}
	z.mu.Lock()
	z.idx, z.rev = x, rev
	z.mu.Unlock()
	return nil
}

// Run keeps the index up to date with the store until ctx ends; a failed
// watch is followed by a fresh Load. Call Load first.
func (z *Authorizer) Run(ctx context.Context) error {
	for {
		err := z.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		z.log.Warn("watch of roles and bindings ended; loading them again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		if err := z.Load(ctx); err != nil && ctx.Err() == nil {
			z.log.Warn("loading roles and bindings", "err", err)
		}
	}
}

// follow applies the changes after the loaded revision until the watch
// fails or ctx ends.
func (z *Authorizer) follow(ctx context.Context) error {
	z.mu.RLock()
	rev := z.rev
	z.mu.RUnlock()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var chans [len(prefixes)]<-chan store.Event
	for i, p := range prefixes {
		ch, err := z.st.Watch(wctx, p, rev)
		if err != nil {
			return err
		}
		chans[i] = ch
	}
	for {
		var ev store.Event
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok = <-chans[0]:
		case ev, ok = <-chans[1]:
		case ev, ok = <-chans[2]:
		case ev, ok = <-chans[3]:
		}
		switch {
		case !ok:
			return errors.New("watch closed")
		case ev.Type == store.EventError:
			return ev.Err
		case ev.Type == store.EventProgress:
			continue
		}
		z.mu.Lock()
		err := apply(z.idx, ev)
		z.mu.Unlock()
		if err != nil {
			z.log.Warn("skipping undecodable object", "key", ev.Key, "err", err)
		}
	}
}

// apply records one stored change of a role or binding in x.
func apply(x *index, ev store.Event) error {
	parts := strings.Split(strings.TrimPrefix(ev.Key, "/registry/"), "/")
	var namespace, name string
	switch len(parts) {
	case 2:
		name = parts[1]
	case 3:
		namespace, name = parts[1], parts[2]
	default:
		return fmt.Errorf("unexpected key %q", ev.Key)
	}
	res, ok := registry.LookupIn(registry.GroupRBAC, parts[0])
	if !ok {
		return fmt.Errorf("unexpected key %q", ev.Key)
	}
	remove := ev.Type == store.EventDelete
	if remove {
		if res.Kind == "RoleBinding" || res.Kind == "ClusterRoleBinding" {
			x.removeBinding(namespace, name)
		} else {
			x.setRole(namespace, name, nil, true)
		}
		return nil
	}
	obj := res.New()
	if err := registry.DecodeStored(ev.Value, obj); err != nil {
		return err
	}
	record(x, obj)
	return nil
}

// record puts obj, a decoded RBAC object, in x.
func record(x *index, obj runtime.Object) {
	switch o := obj.(type) {
	case *rbacv1.Role:
		x.setRole(o.Namespace, o.Name, o.Rules, false)
	case *rbacv1.ClusterRole:
		x.setRole("", o.Name, o.Rules, false)
	case *rbacv1.RoleBinding:
		x.setBinding(newBinding(o.Namespace, o.Name, o.RoleRef, o.Subjects))
	case *rbacv1.ClusterRoleBinding:
		x.setBinding(newBinding("", o.Name, o.RoleRef, o.Subjects))
	}
}

// Authorize reports whether a binding of u, or of one of its groups,
// grants a: a ClusterRoleBinding anywhere, a RoleBinding in a's namespace.
// The reason names the binding, role and subject that allow; a denial has
// none.
func (z *Authorizer) Authorize(_ context.Context, u auth.User, a auth.Attributes) (bool, string) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	x := z.idx
	if b, s := firstAllowing(x, x.cluster, u, &a); b != nil {
		return true, b.reason(s)
	}
	if a.Namespace == "" || !a.IsResourceRequest() {
		return false, ""
	}
	if b, s := firstAllowing(x, x.namespaced[a.Namespace], u, &a); b != nil {
		return true, b.reason(s)
	}
	return false, ""
}

// firstAllowing returns the first of the bindings in bySubject of u or
// its groups whose role grants a, and the subject it matched.
func firstAllowing(x *index, bySubject map[subject][]*binding, u auth.User, a *auth.Attributes) (*binding, subject) {
	if len(bySubject) == 0 {
		return nil, subject{}
	}
	s := subject{name: u.Name}
	if b := allowingOf(x, bySubject[s], a); b != nil {
		return b, s
	}
	for _, g := range u.Groups {
		s = subject{group: true, name: g}
		if b := allowingOf(x, bySubject[s], a); b != nil {
			return b, s
		}
	}
	return nil, subject{}
}

func allowingOf(x *index, bindings []*binding, a *auth.Attributes) *binding {
	for _, b := range bindings {
		rules, _ := x.rulesOf(b)
		for i := range rules {
			if ruleAllows(&rules[i], a) {
				return b
			}
		}
	}
	return nil
}

// RulesFor returns the rules the bindings of u grant in namespace (""
// for the cluster-wide ones only): those of its ClusterRoleBindings, then
// those of its RoleBindings in namespace. The slice is the caller's; the
// rules in it are shared and must not be modified. Bindings to a missing
// role are reported in errs, as Kubernetes does, and add nothing.
func (z *Authorizer) RulesFor(u auth.User, namespace string) (rules []rbacv1.PolicyRule, errs []error) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	x := z.idx
	maps := []map[subject][]*binding{x.cluster}
	if namespace != "" {
		maps = append(maps, x.namespaced[namespace])
	}
	seen := map[*binding]bool{}
	for _, bySubject := range maps {
		keys := []subject{{name: u.Name}}
		for _, g := range u.Groups {
			keys = append(keys, subject{group: true, name: g})
		}
		for _, k := range keys {
			for _, b := range bySubject[k] {
				if seen[b] {
					continue
				}
				seen[b] = true
				r, ok := x.rulesOf(b)
				if !ok {
					errs = append(errs, fmt.Errorf("%s %q refers to %s %q, which does not exist", b.kind(), b.name, b.roleKind, b.roleName))
				}
				rules = append(rules, r...)
			}
		}
	}
	return rules, errs
}

// roleRules returns the rules of the role a binding in namespace refers
// to; ok is false when it does not exist.
func (z *Authorizer) roleRules(namespace string, ref rbacv1.RoleRef) ([]rbacv1.PolicyRule, bool) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.idx.rulesOf(&binding{namespace: namespace, roleKind: ref.Kind, roleName: ref.Name})
}
