package registry

import (
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Node labels that carry roles, printed in the ROLES column.
const (
	nodeRoleLabelPrefix = "node-role.kubernetes.io/"
	nodeRoleLabel       = "kubernetes.io/role"
)

var nodeResource = newNodeResource()

func newNodeResource() *Resource {
	r := &Resource{
		Name:       "nodes",
		Singular:   "node",
		Kind:       "Node",
		ShortNames: []string{"no"},
		HasStatus:  true,

		New:     func() runtime.Object { return &corev1.Node{} },
		NewList: func() runtime.Object { return &corev1.NodeList{} },

		PrepareForCreate:       mutate(prepareNodeForCreate),
		PrepareForUpdate:       mutatePair(prepareNodeForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareNodeForStatusUpdate),

		ValidateCreate:       check(validateNode),
		ValidateUpdate:       checkPair(validateNodeUpdate),
		ValidateStatusUpdate: checkPair(validateNodeStatusUpdate),

		FieldSet: selectable(nodeFields),
		Columns:  nodeColumns,
		Row:      printable(nodeRow),
	}
	notScalable(r)
	return r
}

// prepareNodeForCreate keeps the status: agents register their node with
// its addresses, capacity and conditions.
func prepareNodeForCreate(node *corev1.Node) {
	defaultNodeStatus(&node.Status)
	node.Generation = 1
}

func prepareNodeForUpdate(node, old *corev1.Node) {
	node.Status = old.Status
	nextGeneration(&node.ObjectMeta, &old.ObjectMeta, node.Spec, old.Spec)
}

func prepareNodeForStatusUpdate(node, old *corev1.Node) {
	node.Spec = old.Spec
	node.Generation = old.Generation
	defaultNodeStatus(&node.Status)
}

// defaultNodeStatus makes the whole capacity allocatable when the node
// reports no allocatable resources.
func defaultNodeStatus(st *corev1.NodeStatus) {
	if st.Allocatable == nil && st.Capacity != nil {
		st.Allocatable = st.Capacity.DeepCopy()
	}
}

func validateNode(node *corev1.Node) field.ErrorList {
	errs := validateMeta(&node.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	errs = append(errs, validateNodeSpec(&node.Spec)...)
	return append(errs, validateNodeStatus(&node.Status)...)
}

// validateNodeUpdate lets podCIDR and providerID be set once, never
// changed.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	errs := validateMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateNodeSpec(&node.Spec)...)
	if len(old.Spec.PodCIDRs) > 0 && !slices.Equal(node.Spec.PodCIDRs, old.Spec.PodCIDRs) ||
		old.Spec.PodCIDR != "" && node.Spec.PodCIDR != old.Spec.PodCIDR {
		errs = append(errs, field.Forbidden(specPath.Child("podCIDRs"), `node updates may not change podCIDR except from "" to valid`))
	}
	if old.Spec.ProviderID != "" && node.Spec.ProviderID != old.Spec.ProviderID {
		errs = append(errs, field.Forbidden(specPath.Child("providerID"), `node updates may not change providerID except from "" to valid`))
	}
	return errs
}

func validateNodeStatusUpdate(node, old *corev1.Node) field.ErrorList {
	errs := validateMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateNodeStatus(&node.Status)...)
}

func validateNodeSpec(s *corev1.NodeSpec) field.ErrorList {
	var errs field.ErrorList
	if s.PodCIDR != "" {
		errs = append(errs, validation.IsValidCIDR(specPath.Child("podCIDR"), s.PodCIDR)...)
	}
	cidrsPath := specPath.Child("podCIDRs")
	for i, c := range s.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(cidrsPath.Index(i), c)...)
	}
	if len(s.PodCIDRs) > 2 {
		errs = append(errs, field.TooMany(cidrsPath, len(s.PodCIDRs), 2))
	}
	if len(s.PodCIDRs) > 0 && s.PodCIDRs[0] != s.PodCIDR {
		errs = append(errs, field.Invalid(cidrsPath.Index(0), s.PodCIDRs[0], "must match `podCIDR`"))
	}
	return append(errs, validateTaints(s.Taints, specPath.Child("taints"))...)
}

// validateTaints checks each taint; a key may carry each effect once.
func validateTaints(ts []corev1.Taint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, t := range ts {
		tp := path.Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(tp.Child("key"), ""))
		} else {
			errs = append(errs, messages(tp.Child("key"), t.Key, validation.IsQualifiedName(t.Key))...)
		}
		errs = append(errs, messages(tp.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
		errs = append(errs, validateEnum(t.Effect, tp.Child("effect"),
			corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
		key := t.Key + ":" + string(t.Effect)
		if seen[key] {
			errs = append(errs, field.Duplicate(tp, key))
		}
		seen[key] = true
	}
	return errs
}

func validateNodeStatus(st *corev1.NodeStatus) field.ErrorList {
	errs := validateResourceList(st.Capacity, statusPath.Child("capacity"))
	errs = append(errs, validateResourceList(st.Allocatable, statusPath.Child("allocatable"))...)
	for i, a := range st.Addresses {
		if a.Type == "" {
			errs = append(errs, field.Required(statusPath.Child("addresses").Index(i).Child("type"), ""))
		}
	}
	return errs
}

func nodeFields(node *corev1.Node) fields.Set {
	return metaFields(&node.ObjectMeta, fields.Set{
		"spec.unschedulable": strconv.FormatBool(node.Spec.Unschedulable),
	})
}

var nodeColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Status", "string", "The status of the node", false),
	column("Roles", "string", "The roles of the node", false),
	ageColumn(),
	column("Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"], false),
	column("Internal-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"], true),
	column("External-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"], true),
	column("OS-Image", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"], true),
	column("Kernel-Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"], true),
	column("Container-Runtime", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"], true),
}

func nodeRow(node *corev1.Node, now time.Time) []interface{} {
	info := node.Status.NodeInfo
	return []interface{}{
		node.Name,
		nodeStatus(node),
		orNone(strings.Join(nodeRoles(node), ",")),
		since(node.CreationTimestamp.Time, now),
		info.KubeletVersion,
		orNone(nodeAddress(node, corev1.NodeInternalIP)),
		orNone(nodeAddress(node, corev1.NodeExternalIP)),
		orUnknown(info.OSImage),
		orUnknown(info.KernelVersion),
		orUnknown(info.ContainerRuntimeVersion),
	}
}

// nodeStatus is Ready, NotReady or Unknown (no Ready condition yet), with
// ",SchedulingDisabled" for a cordoned node.
func nodeStatus(node *corev1.Node) string {
	s := "Unknown"
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		s = "NotReady"
		if c.Status == corev1.ConditionTrue {
			s = "Ready"
		}
	}
	if node.Spec.Unschedulable {
		s += ",SchedulingDisabled"
	}
	return s
}

// nodeRoles reads the roles from node-role.kubernetes.io/ROLE labels and
// the older kubernetes.io/role label, sorted.
func nodeRoles(node *corev1.Node) []string {
	var roles []string
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, nodeRoleLabelPrefix):
			if role := strings.TrimPrefix(k, nodeRoleLabelPrefix); role != "" {
				roles = append(roles, role)
			}
		case k == nodeRoleLabel && v != "":
			roles = append(roles, v)
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// nodeAddress is the node's first address of type t.
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return ""
}
