package registry

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxDataSize is the most bytes the values of a ConfigMap or a Secret
// may hold together, as in Kubernetes: an object must fit in one etcd
// value, and nodes keep every mounted one in memory.
const MaxDataSize = 1 << 20

// immutableMsg is the detail of a change to a field an immutable
// ConfigMap or Secret keeps.
const immutableMsg = "field is immutable when `immutable` is set"

var (
	dataPath       = field.NewPath("data")
	binaryDataPath = field.NewPath("binaryData")
	immutablePath  = field.NewPath("immutable")
)

var configMapResource = newConfigMapResource()

func newConfigMapResource() *Resource {
	r := &Resource{
		Name:       "configmaps",
		Singular:   "configmap",
		Kind:       "ConfigMap",
		ShortNames: []string{"cm"},
		Namespaced: true,

		New:     func() runtime.Object { return &corev1.ConfigMap{} },
		NewList: func() runtime.Object { return &corev1.ConfigMapList{} },

		PrepareForCreate:       mutate(func(*corev1.ConfigMap) {}),
		PrepareForUpdate:       mutatePair(keepGeneration[*corev1.ConfigMap]),
		PrepareForStatusUpdate: mutatePair(prepareConfigMapForStatusUpdate),

		ValidateCreate:       check(validateConfigMap),
		ValidateUpdate:       checkPair(validateConfigMapUpdate),
		ValidateStatusUpdate: checkPair(validateConfigMapUpdate),

		FieldSet: selectable(func(cm *corev1.ConfigMap) fields.Set { return metaFields(&cm.ObjectMeta, nil) }),
		Columns:  configMapColumns,
		Row:      printable(configMapRow),
	}
	notScalable(r)
	return r
}

// keepGeneration keeps old's generation on an update of a kind without a
// spec: clients do not set it, and nothing bumps it.
func keepGeneration[T metav1.Object](obj, old T) {
	obj.SetGeneration(old.GetGeneration())
}

// prepareConfigMapForStatusUpdate keeps everything but metadata:
// ConfigMaps have no status (and no status subresource).
func prepareConfigMapForStatusUpdate(cm, old *corev1.ConfigMap) {
	cm.Data, cm.BinaryData, cm.Immutable = old.Data, old.BinaryData, old.Immutable
	cm.Generation = old.Generation
}

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateMeta(&cm.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateConfigMapData(cm)...)
}

// validateConfigMapData checks the keys and the total size of data and
// binaryData, which may not share a key.
func validateConfigMapData(cm *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, key := range sortedKeys(cm.Data) {
		p := dataPath.Key(key)
		errs = append(errs, validateDataKey(key, p)...)
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[key])
	}
	for _, key := range sortedKeys(cm.BinaryData) {
		errs = append(errs, validateDataKey(key, binaryDataPath.Key(key))...)
		size += len(cm.BinaryData[key])
	}
	if size > MaxDataSize {
		// Kubernetes reports the whole object; naming data tells the
		// client which part is too big.
		errs = append(errs, field.TooLong(dataPath, "", MaxDataSize))
	}
	return errs
}

// validateConfigMapUpdate refuses, once a ConfigMap is immutable, any
// change to its data or a way back to mutable.
func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)
	if isTrue(old.Immutable) {
		errs = append(errs, immutableErrors(cm.Immutable, []immutableField{
			{dataPath, cm.Data, old.Data},
			{binaryDataPath, cm.BinaryData, old.BinaryData},
		})...)
	}
	return append(errs, validateConfigMapData(cm)...)
}

// immutableField is one field an immutable object keeps: its path, new
// and old value.
type immutableField struct {
	path     *field.Path
	new, old interface{}
}

// immutableErrors lists what an update of an immutable object may not
// do: become mutable (immutable is the update's flag) or change a field.
func immutableErrors(immutable *bool, fs []immutableField) field.ErrorList {
	var errs field.ErrorList
	if !isTrue(immutable) {
		errs = append(errs, field.Forbidden(immutablePath, immutableMsg))
	}
	for _, f := range fs {
		if !apiequality.Semantic.DeepEqual(f.new, f.old) {
			errs = append(errs, field.Forbidden(f.path, immutableMsg))
		}
	}
	return errs
}

// validateDataKey checks a key of data, binaryData or stringData as
// Kubernetes does: a file name a volume can hold (no "/", not "." or
// "..").
func validateDataKey(key string, path *field.Path) field.ErrorList {
	return messages(path, key, validation.IsConfigMapKey(key))
}

func isTrue(b *bool) bool { return b != nil && *b }

// sortedKeys gives m's keys in order, so errors come out in a stable
// order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var configMapColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"], false),
	ageColumn(),
}

func configMapRow(cm *corev1.ConfigMap, now time.Time) []interface{} {
	return []interface{}{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), since(cm.CreationTimestamp.Time, now)}
}
