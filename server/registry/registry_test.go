package registry

import (
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestAll(t *testing.T) {
	var got []string
	for _, r := range All() {
		got = append(got, r.Name+" "+r.Kind)
	}
	want := []string{
		"namespaces Namespace", "pods Pod", "services Service", "endpoints Endpoints",
		"replicationcontrollers ReplicationController", "nodes Node", "events Event",
		"poddisruptionbudgets PodDisruptionBudget", "configmaps ConfigMap", "secrets Secret",
		"serviceaccounts ServiceAccount", "podtemplates PodTemplate",
		"limitranges LimitRange", "resourcequotas ResourceQuota",
		"persistentvolumeclaims PersistentVolumeClaim", "persistentvolumes PersistentVolume",
		"endpointslices EndpointSlice", "leases Lease", "events Event",
		"jobs Job", "cronjobs CronJob",
		"replicasets ReplicaSet", "deployments Deployment",
		"controllerrevisions ControllerRevision",
		"customresourcedefinitions CustomResourceDefinition",
		"validatingwebhookconfigurations ValidatingWebhookConfiguration",
		"mutatingwebhookconfigurations MutatingWebhookConfiguration",
		"validatingadmissionpolicies ValidatingAdmissionPolicy",
		"validatingadmissionpolicybindings ValidatingAdmissionPolicyBinding",
		"mutatingadmissionpolicies MutatingAdmissionPolicy",
		"mutatingadmissionpolicybindings MutatingAdmissionPolicyBinding",
		"roles Role", "clusterroles ClusterRole", "rolebindings RoleBinding", "clusterrolebindings ClusterRoleBinding",
		"daemonsets DaemonSet", "statefulsets StatefulSet",
		"apiservices APIService",
		"runtimeclasses RuntimeClass", "priorityclasses PriorityClass",
		"storageclasses StorageClass", "csidrivers CSIDriver", "csinodes CSINode",
		"csistoragecapacities CSIStorageCapacity", "volumeattachments VolumeAttachment",
		"volumeattributesclasses VolumeAttributesClass",
		"ingresses Ingress", "ingressclasses IngressClass",
		"servicecidrs ServiceCIDR", "ipaddresses IPAddress",
		"deviceclasses DeviceClass", "resourceclaims ResourceClaim", "resourceclaimtemplates ResourceClaimTemplate",
		"resourceslices ResourceSlice", "devicetaintrules DeviceTaintRule",
		"horizontalpodautoscalers HorizontalPodAutoscaler", "horizontalpodautoscalers HorizontalPodAutoscaler",
		"flowschemas FlowSchema", "prioritylevelconfigurations PriorityLevelConfiguration",
		"storageversionmigrations StorageVersionMigration",
		"clustertrustbundles ClusterTrustBundle", "certificatesigningrequests CertificateSigningRequest",
		"podcertificaterequests PodCertificateRequest",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("All() (-want +got):\n%s", diff)
	}
}

func TestLookup(t *testing.T) {
	for _, r := range All() {
		if got, ok := LookupVersion(r.GroupVersion(), r.Name); !ok || got != r {
			t.Errorf("LookupVersion(%v, %q) = %v, %v; want the %s resource", r.GroupVersion(), r.Name, got, ok, r.Kind)
		}
		// LookupIn gives the stored version of a kind served in several.
		want := r
		if r.View != nil && r.View.Of.Group == r.Group {
			want = r.View.Of
		}
		if got, ok := LookupIn(r.Group, r.Name); !ok || got != want {
			t.Errorf("LookupIn(%q, %q) = %v, %v; want the %s %s resource", r.Group, r.Name, got, ok, want.GroupVersion(), want.Kind)
		}
		if r.View != nil {
			continue // Lookup and ByKind give the resource it views
		}
		if got, ok := Lookup(r.Name); !ok || got != r {
			t.Errorf("Lookup(%q) = %v, %v; want the %s resource", r.Name, got, ok, r.Kind)
		}
		if got, ok := ByKind(r.Kind); !ok || got != r {
			t.Errorf("ByKind(%q) = %v, %v; want the %s resource", r.Kind, got, ok, r.Kind)
		}
	}
	if got, _ := LookupIn(GroupAutoscaling, "horizontalpodautoscalers"); got != hpaResource {
		t.Errorf("LookupIn(autoscaling, horizontalpodautoscalers) = %s, want the stored v2", got.GroupVersion())
	}
	if diff := cmp.Diff([]string{"v2", "v1"}, Versions(GroupAutoscaling)); diff != "" {
		t.Errorf("Versions(autoscaling) (-want +got):\n%s", diff)
	}
	if got := Versions("example.com"); got != nil {
		t.Errorf("Versions(example.com) = %v, want none", got)
	}
	if got, _ := Lookup("events"); got != eventResource {
		t.Errorf("Lookup(events) = %s/%s, want the core Event", got.Group, got.Kind)
	}
	if _, ok := LookupIn(GroupEvents, "pods"); ok {
		t.Errorf("LookupIn(%q, pods) found a resource", GroupEvents)
	}
	for _, name := range []string{"pod", "po", "Pods", "deployment", ""} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found a resource, want none", name)
		}
	}
}

func TestAllIsACopy(t *testing.T) {
	all := All()
	all[0] = nil
	if All()[0] == nil {
		t.Error("changing the slice All returned changed the registry")
	}
}

// TestResourceContract checks what the API server relies on for every
// kind: every func set, types matching Kind, and tables that line up.
func TestResourceContract(t *testing.T) {
	for _, r := range All() {
		t.Run(r.Name, func(t *testing.T) {
			v := reflect.ValueOf(r).Elem()
			for i := 0; i < v.NumField(); i++ {
				if f := v.Field(i); f.Kind() == reflect.Func && f.IsNil() {
					t.Errorf("%s is nil", v.Type().Field(i).Name)
				}
			}
			if got := reflect.TypeOf(r.New()).Elem().Name(); got != r.Kind {
				t.Errorf("New() is a %s, want %s", got, r.Kind)
			}
			if got := reflect.TypeOf(r.NewList()).Elem().Name(); got != r.Kind+"List" {
				t.Errorf("NewList() is a %s, want %sList", got, r.Kind)
			}
			if _, err := meta.ListAccessor(r.NewList()); err != nil {
				t.Errorf("NewList() is not a list: %v", err)
			}
			checkColumns(t, r)
		})
	}
}

func checkColumns(t *testing.T, r *Resource) {
	t.Helper()
	var names []string
	for _, c := range r.Columns {
		if c.Format == "name" {
			names = append(names, c.Name)
		}
		if c.Description == "" {
			t.Errorf("column %q has no description", c.Name)
		}
	}
	if !slices.Equal(names, []string{"Name"}) {
		t.Errorf("columns with format name = %v, want [Name]", names)
	}
}

// TestEmptyObjects runs every func on empty objects, as a client may send
// them: nothing may panic, and rows and field sets keep their shape.
func TestEmptyObjects(t *testing.T) {
	for _, r := range All() {
		t.Run(r.Name, func(t *testing.T) {
			obj := r.New()
			r.PrepareForCreate(obj)
			r.ValidateCreate(obj)
			old := r.New()
			r.PrepareForUpdate(obj, old)
			r.ValidateUpdate(obj, old)
			r.PrepareForStatusUpdate(obj, old)
			r.ValidateStatusUpdate(obj, old)
			if got := len(r.Row(r.New())); got != len(r.Columns) {
				t.Errorf("Row has %d cells for %d columns", got, len(r.Columns))
			}
			fs := r.FieldSet(r.New())
			for _, f := range []string{"metadata.name", "metadata.namespace"} {
				if !fs.Has(f) {
					t.Errorf("FieldSet lacks %s", f)
				}
			}
			r.Replicas(obj)
			r.SetReplicas(obj, 2)
		})
	}
}

func TestNotScalable(t *testing.T) {
	pod := validPod()
	before := pod.DeepCopy()
	podResource.SetReplicas(pod, 3)
	spec, status, selector := podResource.Replicas(pod)
	if spec != 0 || status != 0 || selector != "" || !reflect.DeepEqual(before, pod) {
		t.Errorf("pods scaled: Replicas() = %d, %d, %q", spec, status, selector)
	}
}

func TestTable(t *testing.T) {
	ns := validNamespace()
	ns.CreationTimestamp = metav1.Now()
	objs := []runtime.Object{ns}
	tests := []struct {
		include metav1.IncludeObjectPolicy
		want    runtime.Object
	}{
		{metav1.IncludeNone, nil},
		{metav1.IncludeObject, ns},
		{metav1.IncludeMetadata, &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: ns.ObjectMeta,
		}},
		{"", &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: ns.ObjectMeta,
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.include), func(t *testing.T) {
			table := namespaceResource.Table(objs, tc.include)
			want := &metav1.Table{
				TypeMeta:          metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
				ColumnDefinitions: namespaceColumns,
				Rows: []metav1.TableRow{{
					Cells:  []interface{}{"team-a", "Active", "0s"},
					Object: runtime.RawExtension{Object: tc.want},
				}},
			}
			if diff := cmp.Diff(want, table); diff != "" {
				t.Errorf("Table (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTableEmpty(t *testing.T) {
	table := podResource.Table(nil, metav1.IncludeMetadata)
	if table.Rows == nil || len(table.Rows) != 0 || len(table.ColumnDefinitions) != len(podColumns) {
		t.Errorf("Table(nil) = %+v, want no rows (not null) and the pod columns", table)
	}
	table.ColumnDefinitions[0].Name = "changed"
	if podColumns[0].Name != "Name" {
		t.Error("changing a table's columns changed the resource's")
	}
}

func TestTypedFuncsRejectOtherKinds(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("PrepareForCreate of a Service with the pod resource did not panic")
		}
	}()
	podResource.PrepareForCreate(&corev1.Service{})
}
