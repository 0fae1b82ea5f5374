package registry

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var podResource = newPodResource()

func newPodResource() *Resource {
	r := &Resource{
		Name:       "pods",
		Singular:   "pod",
		Kind:       "Pod",
		ShortNames: []string{"po"},
		Namespaced: true,
		HasStatus:  true,

		New:     func() runtime.Object { return &corev1.Pod{} },
		NewList: func() runtime.Object { return &corev1.PodList{} },

		PrepareForCreate:       mutate(preparePodForCreate),
		PrepareForUpdate:       mutatePair(preparePodForUpdate),
		PrepareForStatusUpdate: mutatePair(preparePodForStatusUpdate),

		ValidateCreate:       check(validatePod),
		ValidateUpdate:       checkPair(validatePodUpdate),
		ValidateStatusUpdate: checkPair(validatePodStatusUpdate),

		FieldSet: selectable(podFields),
		Columns:  podColumns,
		Row:      printable(podRow),
	}
	notScalable(r)
	return r
}

// preparePodForCreate defaults a new pod and gives it the status of a
// pod nobody has looked at yet.
func preparePodForCreate(pod *corev1.Pod) {
	defaultPod(pod)
	pod.Generation = 1
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&pod.Spec)}
}

func preparePodForUpdate(pod, old *corev1.Pod) {
	defaultPod(pod)
	pod.Status = old.Status
	nextGeneration(&pod.ObjectMeta, &old.ObjectMeta, pod.Spec, old.Spec)
}

// preparePodForStatusUpdate keeps old's spec. As in Kubernetes, the
// status path may not change owner references, and the QoS class stays
// what create computed.
func preparePodForStatusUpdate(pod, old *corev1.Pod) {
	pod.Spec = old.Spec
	pod.OwnerReferences = old.OwnerReferences
	pod.Generation = old.Generation
	pod.Status.QOSClass = old.Status.QOSClass
}

func validatePod(pod *corev1.Pod) field.ErrorList {
	errs := validateMeta(&pod.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	if len(pod.Spec.EphemeralContainers) > 0 {
		// They are added to a running pod, through pods/ephemeralcontainers.
		errs = append(errs, field.Forbidden(ephemeralPath, "cannot be set on create"))
	}
	return append(errs, validatePodSpec(&pod.Spec, specPath)...)
}

func podFields(pod *corev1.Pod) fields.Set {
	return metaFields(&pod.ObjectMeta, fields.Set{
		"spec.nodeName":            pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(pod.Spec.HostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             podIP(pod),
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
	})
}

// podIP is the pod's primary IP, "" before it has one.
func podIP(pod *corev1.Pod) string {
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) > 0 {
		return pod.Status.PodIPs[0].IP
	}
	return pod.Status.PodIP
}
