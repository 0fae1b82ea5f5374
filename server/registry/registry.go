package registry

import (
	"reflect"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/version"
)

// resources lists every kind served, in discovery order.
var resources = []*Resource{
	namespaceResource,
	podResource,
	serviceResource,
	endpointsResource,
	replicationControllerResource,
	nodeResource,
	eventResource,
	pdbResource,
	configMapResource,
	secretResource,
	serviceAccountResource,
	podTemplateResource,
	limitRangeResource,
	resourceQuotaResource,
	pvcResource,
	pvResource,
	endpointSliceResource,
	leaseResource,
	eventsV1Resource,
	jobResource,
	cronJobResource,
	replicaSetResource,
	deploymentResource,
	controllerRevisionResource,
	crdResource,
	validatingWebhookConfigurationResource,
	mutatingWebhookConfigurationResource,
	validatingAdmissionPolicyResource,
	validatingAdmissionPolicyBindingResource,
	mutatingAdmissionPolicyResource,
	mutatingAdmissionPolicyBindingResource,
	roleResource,
	clusterRoleResource,
	roleBindingResource,
	clusterRoleBindingResource,
	daemonSetResource,
	statefulSetResource,
	apiServiceResource,
	runtimeClassResource,
	priorityClassResource,
	storageClassResource,
	csiDriverResource,
	csiNodeResource,
	csiStorageCapacityResource,
	volumeAttachmentResource,
	volumeAttributesClassResource,
	ingressResource,
	ingressClassResource,
	serviceCIDRResource,
	ipAddressResource,
	deviceClassResource,
	resourceClaimResource,
	resourceClaimTemplateResource,
	resourceSliceResource,
	deviceTaintRuleResource,
	hpaResource,
	hpaV1Resource,
	flowSchemaResource,
	priorityLevelResource,
	storageVersionMigrationResource,
	clusterTrustBundleResource,
	csrResource,
	podCertificateRequestResource,
}

var (
	byName = index(func(r *Resource) string { return r.Name })
	byKind = index(func(r *Resource) string { return r.Kind })
)

// index maps key to the first resource with it: a core resource before a
// view of it in another group, which LookupIn finds.
func index(key func(*Resource) string) map[string]*Resource {
	m := make(map[string]*Resource, len(resources))
	for _, r := range resources {
		if _, dup := m[key(r)]; !dup {
			m[key(r)] = r
		}
	}
	return m
}

// All returns every resource served, core (/api/v1) and grouped
// (/apis/GROUP/VERSION), in a stable order. The
// slice is the caller's; the Resources are shared and must not be
// modified.
func All() []*Resource {
	return append([]*Resource(nil), resources...)
}

// Lookup finds a resource by its plural name ("pods"), the first of All
// for a name served in several groups (core "events"). The Resource is
// shared and must not be modified.
func Lookup(resource string) (*Resource, bool) {
	r, ok := byName[resource]
	return r, ok
}

// LookupIn finds a resource by its API group and plural name: in a group
// served in several versions, the one whose objects are stored. The
// Resource is shared and must not be modified.
func LookupIn(group, resource string) (*Resource, bool) {
	var view *Resource
	for _, r := range resources {
		if r.Group != group || r.Name != resource {
			continue
		}
		if r.View == nil {
			return r, true
		}
		if view == nil {
			view = r
		}
	}
	return view, view != nil
}

// LookupVersion finds a resource by its group-version and plural name.
// The Resource is shared and must not be modified.
func LookupVersion(gv schema.GroupVersion, resource string) (*Resource, bool) {
	for _, r := range resources {
		if r.Name == resource && r.GroupVersion() == gv {
			return r, true
		}
	}
	return nil, false
}

// Versions lists the versions group's resources are served in, the
// preferred first (Kubernetes' order: GA before beta before alpha, higher
// numbers first); none for a group minik does not serve.
func Versions(group string) []string {
	var vs []string
	for _, r := range resources {
		if v := r.GroupVersion().Version; r.Group == group && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, func(a, b string) int { return -version.CompareKubeAwareVersionStrings(a, b) })
	return vs
}

// ByKind finds a resource by its kind ("Pod"), the first of All for a
// kind served in several groups. The Resource is shared and must not be
// modified.
func ByKind(kind string) (*Resource, bool) {
	r, ok := byKind[kind]
	return r, ok
}

// The adapters below turn typed funcs into the runtime.Object funcs of a
// Resource. A wrong type is a programming error in the API server and
// panics.

func mutate[T runtime.Object](f func(T)) func(runtime.Object) {
	return func(obj runtime.Object) { f(obj.(T)) }
}

func mutatePair[T runtime.Object](f func(obj, old T)) func(runtime.Object, runtime.Object) {
	return func(obj, old runtime.Object) { f(obj.(T), old.(T)) }
}

func check[T runtime.Object](f func(T) field.ErrorList) func(runtime.Object) field.ErrorList {
	return func(obj runtime.Object) field.ErrorList { return f(obj.(T)) }
}

func checkPair[T runtime.Object](f func(obj, old T) field.ErrorList) func(runtime.Object, runtime.Object) field.ErrorList {
	return func(obj, old runtime.Object) field.ErrorList { return f(obj.(T), old.(T)) }
}

func selectable[T runtime.Object](f func(T) fields.Set) func(runtime.Object) fields.Set {
	return func(obj runtime.Object) fields.Set { return f(obj.(T)) }
}

func printable[T runtime.Object](f func(T, time.Time) []interface{}) func(runtime.Object) []interface{} {
	return func(obj runtime.Object) []interface{} { return f(obj.(T), time.Now()) }
}

// notScalable fills Replicas and SetReplicas of kinds without a scale
// subresource (HasScale false): they report zero and change nothing.
func notScalable(r *Resource) {
	r.Replicas = func(runtime.Object) (int32, int32, string) { return 0, 0, "" }
	r.SetReplicas = func(runtime.Object, int32) {}
}

// metaFields is the field set every kind supports.
func metaFields(m *metav1.ObjectMeta, more fields.Set) fields.Set {
	set := fields.Set{
		"metadata.name":      m.Name,
		"metadata.namespace": m.Namespace,
	}
	for k, v := range more {
		set[k] = v
	}
	return set
}

// ptrTo returns a pointer to a copy of v.
func ptrTo[T any](v T) *T { return &v }

// setMembers returns the JSON names of the non-nil pointer fields of the
// struct s points to, for one-of unions such as corev1.VolumeSource.
func setMembers(s interface{}) []string {
	v := reflect.ValueOf(s).Elem()
	var names []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			tag := v.Type().Field(i).Tag.Get("json")
			names = append(names, strings.Split(tag, ",")[0])
		}
	}
	return names
}
