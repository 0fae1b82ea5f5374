package streaming

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/minik-dev/minik/api"
)

// ServePodSubresource serves pods/log, pods/exec, pods/attach, pods/proxy
// and pods/portforward for pod, which the API server has already read and
// authorized, by forwarding the request to the node the pod is bound to.
// For proxy, the port and path come from r's URL
// (.../pods/[SCHEME:]NAME[:PORT]/proxy[/PATH]).
func (s *Server) ServePodSubresource(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, subresource string) {
	switch subresource {
	case "log":
		s.serveLogs(w, r, pod)
	case "exec":
		s.serveExec(w, r, pod, false)
	case "attach":
		s.serveExec(w, r, pod, true)
	case "proxy":
		s.servePodProxy(w, r, pod)
	case "portforward":
		s.servePortForward(w, r, pod)
	default:
		writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, pod.Name+"/"+subresource))
	}
}

// nodeOf returns the node pod is bound to.
func nodeOf(pod *corev1.Pod) (string, error) {
	if pod.Spec.NodeName == "" {
		return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	return pod.Spec.NodeName, nil
}

// containerOf resolves the container a request names, defaulting to the
// pod's only container, with Kubernetes' messages.
func containerOf(pod *corev1.Pod, name string) (string, error) {
	if name != "" {
		for _, c := range pod.Spec.Containers {
			if c.Name == name {
				return name, nil
			}
		}
		for _, c := range pod.Spec.InitContainers {
			if c.Name == name {
				return name, nil
			}
		}
		for _, c := range pod.Spec.EphemeralContainers {
			if c.Name == name {
				return name, nil
			}
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	switch len(pod.Spec.Containers) {
	case 1:
		return pod.Spec.Containers[0].Name, nil
	case 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a container", pod.Name))
	}
	msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, names(pod.Spec.Containers))
	if len(pod.Spec.InitContainers) > 0 {
		msg += fmt.Sprintf(" or one of the init containers: %s", names(pod.Spec.InitContainers))
	}
	return "", apierrors.NewBadRequest(msg)
}

func names(cs []corev1.Container) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// tunnelError maps an error of opening or running a session to a Status.
func tunnelError(node string, err error) error {
	var st apierrors.APIStatus
	switch {
	case errors.As(err, &st):
		return err
	case errors.Is(err, ErrNodeNotConnected):
		return apierrors.NewServiceUnavailable(fmt.Sprintf("node %q is not connected", node))
	case errors.Is(err, ErrOpenTimeout):
		return apierrors.NewTimeoutError(fmt.Sprintf("node %q did not answer in time", node), 0)
	case errors.Is(err, context.Canceled):
		return apierrors.NewTimeoutError("request cancelled", 0)
	}
	return apierrors.NewInternalError(err)
}

// resultError maps an agent's failed result to a Status; nil for CODE_OK.
func resultError(res *api.TunnelResult) error {
	code, reason := http.StatusInternalServerError, metav1.StatusReasonInternalError
	switch res.GetCode() {
	case api.TunnelResult_CODE_OK:
		return nil
	case api.TunnelResult_CODE_NOT_FOUND:
		code, reason = http.StatusNotFound, metav1.StatusReasonNotFound
	case api.TunnelResult_CODE_INVALID, api.TunnelResult_CODE_UNSUPPORTED:
		code, reason = http.StatusBadRequest, metav1.StatusReasonBadRequest
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: res.GetMessage(),
	}}
}

// statusOf returns the Status for err (an internal error unless err
// carries one).
func statusOf(err error) *metav1.Status {
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	st := se.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	return &st
}

// writeStatus writes err as a JSON Status response.
func writeStatus(w http.ResponseWriter, err error) {
	st := statusOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	json.NewEncoder(w).Encode(st)
}

// methodAllowed writes 405 unless r's method is one of methods.
func methodAllowed(w http.ResponseWriter, r *http.Request, sub string, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	writeStatus(w, apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "pods/" + sub}, strings.ToLower(r.Method)))
	return false
}
