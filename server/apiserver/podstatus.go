package apiserver

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/registry"
)

// podsResource is the registry's pods, for the in-process pod methods.
var podsResource = mustLookup("pods")

func mustLookup(resource string) *registry.Resource {
	res, ok := registry.Lookup(resource)
	if !ok {
		panic("apiserver: resource " + resource + " is not registered")
	}
	return res
}

// UpdatePodStatus replaces the status of pod namespace/name as user u, in
// process, and returns the revision it wrote, or 0 if it wrote none: the
// status was unchanged, or the write removed a pod that was done. It applies what a PATCH of pods/NAME/status by u does, without
// encoding a request and a response: u's authorization, the status-update
// rules and validation of the registry, the stored form, a write at the
// revision read (retried when another write got in between) and the
// request metrics, counted as a patch of pods. A non-empty uid is a
// precondition on the pod's UID. status is copied, not retained.
//
// Errors are *apierrors.StatusError as the REST API answers them: 403
// Forbidden when u may not write the status (for a node: a pod bound
// elsewhere, or no longer there), 404 NotFound, 409 Conflict for another
// UID, 422 Invalid naming the fields; context errors are returned as
// they are. It is safe for concurrent use.
func (s *Server) UpdatePodStatus(ctx context.Context, u auth.User, namespace, name string, uid types.UID, status *corev1.PodStatus) (rev int64, err error) {
	start := time.Now()
	info := requestInfo{Verb: "patch", Resource: podsResource, Namespace: namespace, Name: name, Subresource: "status"}
	defer func() { s.observeInProcess(info, http.StatusOK, err, time.Since(start)) }()
	u = withGroup(u, auth.GroupAuthenticated)
	attrs := resourceAttributes(info)
	// No admission: the write keeps everything of the pod read but its
	// status (and UID precondition), which is all a node may change
	// through pods/status, and this is the most frequent write.
	var (
		read       string // the resourceVersion of the pod the last try read
		authorized bool   // some try read the pod and authorized u
	)
	obj, err := s.updateObject(ctx, podsResource, namespace, name, updateStatus, false,
		func(cur runtime.Object) (runtime.Object, error) {
			pod := cur.(*corev1.Pod)
			// u is authorized against the pod this try read, so the node
			// a pod is bound to is the one the write goes to, and the pod
			// is read once instead of once more for the authorizer.
			if err := s.authorizeResource(withPodRead(ctx, pod), u, info, attrs); err != nil {
				return nil, err
			}
			authorized = true
			read = pod.ResourceVersion
			pod.UID = uid // "" keeps the stored UID
			pod.Status = *status.DeepCopy()
			return pod, nil
		})
	if err != nil && !authorized && ctx.Err() == nil {
		// No try read the pod (gone, or the store failed): u learns why
		// only if a request of theirs for it would be allowed. Once u was
		// authorized, a later try that finds the pod gone answers 404, as
		// a PATCH authorized up front does.
		if aerr := s.authorizeResource(ctx, u, info, attrs); aerr != nil {
			return 0, aerr
		}
	}
	if err == nil {
		rv := obj.(*corev1.Pod).ResourceVersion
		if rv == "" || rv == read {
			return 0, nil
		}
		return strconv.ParseInt(rv, 10, 64)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, err
	}
	return 0, statusFor(err, schemaGR(podsResource.Name), name)
}

// podReadKey is the context key of a pod an in-process write has read,
// for PodNode to answer from.
type podReadKey struct{}

// withPodRead returns ctx carrying pod, the current state of the pod it
// names as the caller just read it.
func withPodRead(ctx context.Context, pod *corev1.Pod) context.Context {
	return context.WithValue(ctx, podReadKey{}, pod)
}

// observeInProcess records an in-process request in the request metrics
// as its REST counterpart would be: with the HTTP code err maps to, or ok
// on success. It logs a server-side failure other than the caller giving
// up.
func (s *Server) observeInProcess(info requestInfo, ok int, err error, d time.Duration) {
	code := ok
	if err != nil {
		code = int(statusFor(err, schemaGR(info.Resource.Name), info.Name).Status().Code)
		if code == 0 {
			code = http.StatusInternalServerError
		}
		if code >= 500 && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("in-process request failed", "verb", info.Verb, "resource", info.Resource.Name,
				"subresource", info.Subresource, "namespace", info.Namespace, "name", info.Name, "err", err)
		}
	}
	s.metrics.observe(info.Verb, info.Resource.Name, code, d)
}

// withGroup returns u in group, as authentication leaves every user it
// accepts in system:authenticated. u's Groups are not changed.
func withGroup(u auth.User, group string) auth.User {
	if !u.InGroup(group) {
		u.Groups = append(u.Groups[:len(u.Groups):len(u.Groups)], group)
	}
	return u
}
