package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validStatefulSet() *appsv1.StatefulSet {
	return stored(statefulSetResource, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "web",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template:    webTemplate(),
		},
	})
}

// claimTemplate is a valid volume claim template for 1Gi.
func claimTemplate(name string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func TestStatefulSetClaimTemplateDefaults(t *testing.T) {
	s := validStatefulSet()
	s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
	statefulSetResource.PrepareForCreate(s)
	c := s.Spec.VolumeClaimTemplates[0]
	if c.Spec.VolumeMode == nil || *c.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || c.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim template volumeMode = %v, phase = %q; want Filesystem, Pending", c.Spec.VolumeMode, c.Status.Phase)
	}
}

func TestStatefulSetDefaults(t *testing.T) {
	s := validStatefulSet()
	want := appsv1.StatefulSetSpec{
		Replicas:            ptrTo[int32](1),
		PodManagementPolicy: appsv1.OrderedReadyPodManagement,
		UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
			Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{
				Partition: ptrTo[int32](0), MaxUnavailable: ptrTo(intstr.FromInt32(1)),
			},
		},
		RevisionHistoryLimit: ptrTo[int32](10),
		PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		},
	}
	got := s.Spec.DeepCopy()
	got.ServiceName, got.Selector, got.Template = "", nil, corev1.PodTemplateSpec{}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if s.Generation != 1 {
		t.Errorf("generation = %d, want 1", s.Generation)
	}
	od := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}}
	statefulSetResource.PrepareForCreate(od)
	if od.Spec.UpdateStrategy.RollingUpdate != nil {
		t.Errorf("OnDelete got rollingUpdate %+v", od.Spec.UpdateStrategy.RollingUpdate)
	}
}

func TestStatefulSetValidation(t *testing.T) {
	ru := func(s *appsv1.StatefulSet) *appsv1.RollingUpdateStatefulSetStrategy {
		return s.Spec.UpdateStrategy.RollingUpdate
	}
	runValidation(t, statefulSetResource, validStatefulSet, []validationCase[*appsv1.StatefulSet]{
		{name: "valid"},
		{"name is a DNS label", func(s *appsv1.StatefulSet) { s.Name = "web.v1" }, []string{errKey(invalid, "metadata.name")}},
		{"replicas not negative", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptrTo[int32](-1) },
			[]string{errKey(invalid, "spec.replicas")}},
		{"selector required", func(s *appsv1.StatefulSet) { s.Spec.Selector = nil }, []string{errKey(required, "spec.selector")}},
		{"selector not empty", func(s *appsv1.StatefulSet) { s.Spec.Selector = &metav1.LabelSelector{} },
			[]string{errKey(invalid, "spec.selector")}},
		{"selector matches template", func(s *appsv1.StatefulSet) { s.Spec.Selector.MatchLabels["app"] = "api" },
			[]string{errKey(invalid, "spec.template.metadata.labels")}},
		{"restartPolicy Always", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			[]string{errKey(notSupported, "spec.template.spec.restartPolicy")}},
		{"podManagementPolicy", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" },
			[]string{errKey(notSupported, "spec.podManagementPolicy")}},
		{"parallel", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }, nil},
		{"updateStrategy type", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = "Recreate" },
			[]string{errKey(notSupported, "spec.updateStrategy.type")}},
		{"OnDelete takes no rollingUpdate", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate")}},
		{"partition not negative", func(s *appsv1.StatefulSet) { ru(s).Partition = ptrTo[int32](-1) },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate.partition")}},
		{"maxUnavailable not zero", func(s *appsv1.StatefulSet) { ru(s).MaxUnavailable = ptrTo(intstr.FromInt32(0)) },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"maxUnavailable not over 100%", func(s *appsv1.StatefulSet) { ru(s).MaxUnavailable = ptrTo(intstr.FromString("150%")) },
			[]string{errKey(invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"maxUnavailable percentage", func(s *appsv1.StatefulSet) { ru(s).MaxUnavailable = ptrTo(intstr.FromString("50%")) }, nil},
		{"ordinals.start not negative", func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: -1} },
			[]string{errKey(invalid, "spec.ordinals.start")}},
		{"serviceName is a DNS label", func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "Web_1" },
			[]string{errKey(invalid, "spec.serviceName")}},
		{"retention policy", func(s *appsv1.StatefulSet) { s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = "Keep" },
			[]string{errKey(notSupported, "spec.persistentVolumeClaimRetentionPolicy.whenScaled")}},
		{"volume claim mounted", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, nil},
		{"volume claim replaces a template volume", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
			s.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, nil},
		{"volume claim spec checked", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
		}, []string{
			errKey(required, "spec.volumeClaimTemplates[0].spec.accessModes"),
			errKey(required, "spec.volumeClaimTemplates[0].spec.resources[storage]"),
		}},
		{"mount of a volume nobody declares", func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, []string{errKey(notFound, "spec.template.spec.containers[0].volumeMounts[0].name")}},
		{"minReadySeconds not negative", func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = -1 },
			[]string{errKey(invalid, "spec.minReadySeconds")}},
	})
}

func TestStatefulSetUpdate(t *testing.T) {
	runUpdate(t, statefulSetResource, false, validStatefulSet, []validationCase[*appsv1.StatefulSet]{
		{"replicas", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptrTo[int32](5) }, nil},
		{"template", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"update strategy", func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}, nil},
		{"ordinals", func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 3} }, nil},
		{"minReadySeconds", func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = 4 }, nil},
		{"revisionHistoryLimit", func(s *appsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = ptrTo[int32](2) }, nil},
		{"podManagementPolicy immutable", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement },
			[]string{errKey(forbidden, "spec")}},
		{"serviceName immutable", func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "api" }, []string{errKey(forbidden, "spec")}},
		{"selector immutable", func(s *appsv1.StatefulSet) {
			s.Spec.Selector.MatchLabels["tier"] = "front"
			s.Spec.Template.Labels["tier"] = "front"
		}, []string{errKey(forbidden, "spec")}},
	})
}

func TestStatefulSetGeneration(t *testing.T) {
	old := validStatefulSet()
	s := old.DeepCopy()
	s.Labels = map[string]string{"team": "a"}
	statefulSetResource.PrepareForUpdate(s, old)
	if s.Generation != old.Generation {
		t.Errorf("label change: generation %d, want %d", s.Generation, old.Generation)
	}
	s.Spec.Replicas = ptrTo[int32](3)
	statefulSetResource.PrepareForUpdate(s, old)
	if s.Generation != old.Generation+1 {
		t.Errorf("spec change: generation %d, want %d", s.Generation, old.Generation+1)
	}
}

func TestStatefulSetStatusUpdate(t *testing.T) {
	runUpdate(t, statefulSetResource, true, validStatefulSet, []validationCase[*appsv1.StatefulSet]{
		{"counts", func(s *appsv1.StatefulSet) {
			s.Status = appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, CurrentReplicas: 3, UpdatedReplicas: 1}
		}, nil},
		{"ready over replicas", func(s *appsv1.StatefulSet) { s.Status = appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 2} },
			[]string{errKey(invalid, "status.readyReplicas")}},
		{"available over ready", func(s *appsv1.StatefulSet) {
			s.Status = appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 2}
		}, []string{errKey(invalid, "status.availableReplicas")}},
		{"negative", func(s *appsv1.StatefulSet) { s.Status.CurrentReplicas = -1 },
			[]string{errKey(invalid, "status.currentReplicas")}},
		{"spec is kept", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptrTo[int32](-4) }, nil},
	})
	old := validStatefulSet()
	old.Status.CollisionCount = ptrTo[int32](2)
	s := old.DeepCopy()
	s.Status.CollisionCount = ptrTo[int32](1)
	statefulSetResource.PrepareForStatusUpdate(s, old)
	if diff := cmp.Diff([]string{errKey(invalid, "status.collisionCount")}, errorKeys(statefulSetResource.ValidateStatusUpdate(s, old))); diff != "" {
		t.Errorf("decremented collisionCount (-want +got):\n%s", diff)
	}
}

func TestStatefulSetScaleAndRow(t *testing.T) {
	s := validStatefulSet()
	s.Status.Replicas, s.Status.ReadyReplicas = 1, 1
	statefulSetResource.SetReplicas(s, 3)
	spec, status, sel := statefulSetResource.Replicas(s)
	if spec != 3 || status != 1 || sel != "app=web" {
		t.Errorf("Replicas() = %d, %d, %q; want 3, 1, app=web", spec, status, sel)
	}
	row := statefulSetResource.Row(s)
	if diff := cmp.Diff([]interface{}{"web", "1/3"}, row[:2]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
