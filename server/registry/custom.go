package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/client-go/util/jsonpath"
	kjson "sigs.k8s.io/json"
)

// Custom is what a resource served for a version of a
// CustomResourceDefinition has besides the funcs of every Resource.
// Objects of every version are stored as JSON in the storage version
// under /registry/GROUP/PLURAL/. Reading one stored in another version
// rewrites its apiVersion (conversion strategy None) or has Converter
// convert it (strategy Webhook); writing one in a version other than
// the storage version converts it the same way first.
type Custom struct {
	// CRD is the name of the definition, PLURAL.GROUP.
	CRD string
	// StorageVersion is the version objects are stored in.
	StorageVersion string
	// Schema is the structural schema of the version served.
	Schema *structuralschema.Structural
	// Generation is the definition's metadata.generation the resource
	// was built from: objects read under another may differ (defaults).
	Generation int64
	// Converter converts objects between versions; nil for conversion
	// strategy None, which only rewrites apiVersion.
	Converter Converter
}

// Converter converts custom objects between the versions of their
// definition: a conversion webhook.
type Converter interface {
	// Convert returns a new object, u converted to apiVersion
	// (GROUP/VERSION); u is not changed. The metadata of the result is
	// u's but for its labels and annotations. Safe for concurrent use.
	Convert(ctx context.Context, u *unstructured.Unstructured, apiVersion string) (*unstructured.Unstructured, error)
}

// convertTimeout bounds a conversion made while an object is encoded or
// decoded, which happens without the request's context.
const convertTimeout = 30 * time.Second

// convert returns u converted to apiVersion by res's Converter, or u
// itself when it is at apiVersion already or the strategy is None.
func convert(res *Resource, u *unstructured.Unstructured, apiVersion string) (*unstructured.Unstructured, error) {
	if res.Custom.Converter == nil || u.GetAPIVersion() == apiVersion {
		return u, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), convertTimeout)
	defer cancel()
	return res.Custom.Converter.Convert(ctx, u, apiVersion)
}

// customSchema is the compiled schema of one version of a CRD: what
// pruning, defaulting and validation need.
type customSchema struct {
	gvk        string // apiVersion objects must have
	kind       string
	namespaced bool
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
	status     apiservervalidation.SchemaValidator // nil without a status schema
	cel        *cel.Validator                      // nil without x-kubernetes-validations
	hasStatus  bool
	scale      *apiextensionsv1.CustomResourceSubresourceScale
	selectable []selectableField
	table      tableConverter
}

type selectableField struct {
	name string
	path *jsonpath.JSONPath
}

// tableConverter is what NewCustom uses of upstream's printer-column
// converter.
type tableConverter interface {
	ConvertToTable(ctx context.Context, obj runtime.Object, tableOptions runtime.Object) (*metav1.Table, error)
}

// NewCustom returns the resource serving version of crd. crd must be
// valid (ValidateCreate passed): a schema it cannot compile is an error.
func NewCustom(crd *apiextensionsv1.CustomResourceDefinition, version string) (*Resource, error) {
	var v *apiextensionsv1.CustomResourceDefinitionVersion
	storage := ""
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == version {
			v = &crd.Spec.Versions[i]
		}
		if crd.Spec.Versions[i].Storage {
			storage = crd.Spec.Versions[i].Name
		}
	}
	if v == nil {
		return nil, fmt.Errorf("customresourcedefinition %q has no version %q", crd.Name, version)
	}
	cs, err := compileSchema(crd, v)
	if err != nil {
		return nil, fmt.Errorf("customresourcedefinition %q version %q: %w", crd.Name, version, err)
	}
	names := crd.Status.AcceptedNames
	if names.Plural == "" {
		names = crd.Spec.Names
	}
	r := &Resource{
		Name:       names.Plural,
		Singular:   names.Singular,
		Kind:       names.Kind,
		Group:      crd.Spec.Group,
		Version:    version,
		ShortNames: names.ShortNames,
		Categories: names.Categories,
		Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		HasStatus:  cs.hasStatus,
		HasScale:   cs.scale != nil,
		Custom:     &Custom{CRD: crd.Name, StorageVersion: storage, Schema: cs.structural, Generation: crd.Generation},

		New: func() runtime.Object { return &unstructured.Unstructured{Object: map[string]interface{}{}} },
		NewList: func() runtime.Object {
			return &unstructured.UnstructuredList{Object: map[string]interface{}{}}
		},
		PrepareForCreate:       custom(cs.prepareForCreate),
		PrepareForUpdate:       customPair(cs.prepareForUpdate),
		PrepareForStatusUpdate: customPair(cs.prepareForStatusUpdate),
		ValidateCreate:         func(obj runtime.Object) field.ErrorList { return cs.validate(obj.(*unstructured.Unstructured), nil) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return cs.validate(obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured))
		},
		ValidateStatusUpdate: func(obj, old runtime.Object) field.ErrorList {
			return cs.validateStatus(obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured))
		},
		FieldSet: func(obj runtime.Object) fields.Set { return cs.fieldSet(obj.(*unstructured.Unstructured)) },
		Replicas: func(obj runtime.Object) (int32, int32, string) { return cs.replicas(obj.(*unstructured.Unstructured)) },
		SetReplicas: func(obj runtime.Object, n int32) {
			if cs.scale != nil {
				setPath(obj.(*unstructured.Unstructured).Object, cs.scale.SpecReplicasPath, int64(n))
			}
		},
	}
	r.Columns, r.Row = cs.printer()
	return r, nil
}

func custom(f func(*unstructured.Unstructured)) func(runtime.Object) {
	return func(obj runtime.Object) { f(obj.(*unstructured.Unstructured)) }
}

func customPair(f func(obj, old *unstructured.Unstructured)) func(runtime.Object, runtime.Object) {
	return func(obj, old runtime.Object) { f(obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured)) }
}

// compileSchema builds the structural schema, the OpenAPI validators,
// the CEL validator, selectable fields and printer columns of version v.
func compileSchema(crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion) (*customSchema, error) {
	cs := &customSchema{
		gvk:        crd.Spec.Group + "/" + v.Name,
		kind:       crd.Spec.Names.Kind,
		namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
	}
	if v.Subresources != nil {
		cs.hasStatus = v.Subresources.Status != nil
		cs.scale = v.Subresources.Scale
	}
	props := &apiextensions.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptrTo(true)}
	if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
		props = &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, props, nil); err != nil {
			return nil, err
		}
	}
	var err error
	if cs.structural, err = structuralschema.NewStructural(props); err != nil {
		return nil, err
	}
	if cs.validator, _, err = apiservervalidation.NewSchemaValidator(props); err != nil {
		return nil, err
	}
	if st, ok := props.Properties["status"]; ok && cs.hasStatus {
		if cs.status, _, err = apiservervalidation.NewSchemaValidator(&st); err != nil {
			return nil, err
		}
	}
	cs.cel = cel.NewValidator(cs.structural, true, celconfig.PerCallLimit)
	for _, sf := range v.SelectableFields {
		p := jsonpath.New("selectableField").AllowMissingKeys(true)
		if err := p.Parse("{" + sf.JSONPath + "}"); err != nil {
			return nil, fmt.Errorf("selectable field %q: %w", sf.JSONPath, err)
		}
		cs.selectable = append(cs.selectable, selectableField{name: strings.TrimPrefix(sf.JSONPath, "."), path: p})
	}
	cols := v.AdditionalPrinterColumns
	if len(cols) == 0 {
		// As upstream: without columns of its own a kind shows its age.
		cols = []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}}
	}
	if cs.table, err = tableconvertor.New(cols); err != nil {
		return nil, err
	}
	return cs, nil
}

// coerce prunes fields the schema does not know, fixes up metadata and
// applies the schema's defaults, as upstream does to every object it
// decodes.
func (cs *customSchema) coerce(u *unstructured.Unstructured) {
	schemaobjectmeta.Coerce(nil, u.Object, cs.structural, true, false)
	structuralpruning.Prune(u.Object, cs.structural, true)
	structuraldefaulting.Default(u.Object, cs.structural)
}

func (cs *customSchema) prepareForCreate(u *unstructured.Unstructured) {
	if cs.hasStatus {
		delete(u.Object, "status")
	}
	cs.coerce(u)
	u.SetGeneration(1)
}

// prepareForUpdate keeps old's status when the kind has a status
// subresource, and counts a change of anything but metadata as a new
// generation.
func (cs *customSchema) prepareForUpdate(u, old *unstructured.Unstructured) {
	if cs.hasStatus {
		if st, ok := old.Object["status"]; ok {
			u.Object["status"] = runtime.DeepCopyJSONValue(st)
		} else {
			delete(u.Object, "status")
		}
	}
	cs.coerce(u)
	u.SetGeneration(old.GetGeneration())
	if !apiequality.Semantic.DeepEqual(withoutMetadata(u.Object), withoutMetadata(old.Object)) {
		u.SetGeneration(old.GetGeneration() + 1)
	}
}

// prepareForStatusUpdate keeps everything of old but its status.
func (cs *customSchema) prepareForStatusUpdate(u, old *unstructured.Unstructured) {
	st, hasStatus := u.Object["status"]
	meta := u.Object["metadata"]
	u.Object = runtime.DeepCopyJSON(old.Object)
	u.Object["metadata"] = meta
	delete(u.Object, "status")
	if hasStatus {
		u.Object["status"] = st
	}
	cs.coerce(u)
	u.SetGeneration(old.GetGeneration())
}

func withoutMetadata(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		if k != "metadata" {
			out[k] = v
		}
	}
	return out
}

// validate checks an object on create (old nil) or update the way
// upstream does: apiVersion and kind, metadata, the OpenAPI schema,
// embedded resources, list sets and maps, then the CEL rules.
func (cs *customSchema) validate(u, old *unstructured.Unstructured) field.ErrorList {
	if errs := cs.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	var errs field.ErrorList
	if old == nil {
		errs = apivalidation.ValidateObjectMetaAccessor(u, cs.namespaced, apivalidation.NameIsDNSSubdomain, metadataPath)
		errs = append(errs, apiservervalidation.ValidateCustomResource(nil, u.Object, cs.validator)...)
	} else {
		errs = filterRV(apivalidation.ValidateObjectMetaAccessorUpdate(u, old, metadataPath))
		errs = append(errs, apiservervalidation.ValidateCustomResourceUpdate(nil, u.Object, old.Object, cs.validator)...)
	}
	errs = append(errs, cs.validateScale(u)...)
	errs = append(errs, schemaobjectmeta.Validate(context.Background(), nil, u.Object, cs.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, cs.structural, u.Object)...)
	return append(errs, cs.validateRules(u, old, errs)...)
}

func (cs *customSchema) validateStatus(u, old *unstructured.Unstructured) field.ErrorList {
	if errs := cs.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	errs := filterRV(apivalidation.ValidateObjectMetaAccessorUpdate(u, old, metadataPath))
	if st, ok := u.Object["status"]; ok && cs.status != nil {
		errs = append(errs, apiservervalidation.ValidateCustomResourceUpdate(statusPath, st, old.Object["status"], cs.status)...)
	}
	errs = append(errs, cs.validateScale(u)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, cs.structural, u.Object)...)
	return append(errs, cs.validateRules(u, old, errs)...)
}

// validateRules runs the x-kubernetes-validations rules, unless errs has
// type errors that would make them meaningless, as upstream does.
func (cs *customSchema) validateRules(u, old *unstructured.Unstructured, errs field.ErrorList) field.ErrorList {
	if cs.cel == nil {
		return nil
	}
	for _, e := range errs {
		if e.Type == field.ErrorTypeInvalid || e.Type == field.ErrorTypeTypeInvalid || e.Type == field.ErrorTypeRequired {
			if strings.Contains(e.Detail, "must be of type") || e.Type == field.ErrorTypeTypeInvalid {
				return field.ErrorList{field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")}
			}
		}
	}
	var oldObj interface{}
	if old != nil {
		oldObj = old.Object
	}
	out, _ := cs.cel.Validate(context.Background(), nil, cs.structural, u.Object, oldObj, celconfig.RuntimeCELCostBudget)
	return out
}

func (cs *customSchema) validateTypeMeta(u *unstructured.Unstructured) field.ErrorList {
	var errs field.ErrorList
	if u.GetKind() != cs.kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), u.GetKind(), "must be "+cs.kind))
	}
	if u.GetAPIVersion() != cs.gvk {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), u.GetAPIVersion(), "must be "+cs.gvk))
	}
	return errs
}

// validateScale checks the replicas paths of the scale subresource hold
// non-negative integers, as upstream does.
func (cs *customSchema) validateScale(u *unstructured.Unstructured) field.ErrorList {
	if cs.scale == nil {
		return nil
	}
	var errs field.ErrorList
	for _, p := range []string{cs.scale.SpecReplicasPath, cs.scale.StatusReplicasPath} {
		v, found, err := unstructured.NestedFieldNoCopy(u.Object, pathParts(p)...)
		if !found {
			continue
		}
		n, ok := v.(int64)
		if err != nil || !ok {
			errs = append(errs, field.Invalid(field.NewPath(strings.TrimPrefix(p, ".")), v, "must be an integer"))
		} else if n < 0 {
			errs = append(errs, field.Invalid(field.NewPath(strings.TrimPrefix(p, ".")), n, "must be greater than or equal to 0"))
		}
	}
	return errs
}

// fieldSet is metadata.name, metadata.namespace for a namespaced kind,
// and the version's selectable fields ("" where missing).
func (cs *customSchema) fieldSet(u *unstructured.Unstructured) fields.Set {
	set := fields.Set{"metadata.name": u.GetName()}
	if cs.namespaced {
		set["metadata.namespace"] = u.GetNamespace()
	}
	for _, sf := range cs.selectable {
		set[sf.name] = ""
		res, err := sf.path.FindResults(u.Object)
		if err == nil && len(res) == 1 && len(res[0]) == 1 {
			if v := res[0][0].Interface(); v != nil {
				set[sf.name] = fmt.Sprint(v)
			}
		}
	}
	return set
}

// replicas reads the scale subresource's fields.
func (cs *customSchema) replicas(u *unstructured.Unstructured) (spec, status int32, selector string) {
	if cs.scale == nil {
		return 0, 0, ""
	}
	spec = int32(intAt(u.Object, cs.scale.SpecReplicasPath))
	status = int32(intAt(u.Object, cs.scale.StatusReplicasPath))
	if p := cs.scale.LabelSelectorPath; p != nil {
		if v, ok, _ := unstructured.NestedString(u.Object, pathParts(*p)...); ok {
			selector = v
		}
	}
	return spec, status, selector
}

// printer gives the table columns and rows of the version's
// additionalPrinterColumns, through upstream's converter.
func (cs *customSchema) printer() ([]metav1.TableColumnDefinition, func(runtime.Object) []interface{}) {
	empty, _ := cs.table.ConvertToTable(context.Background(), &unstructured.UnstructuredList{Object: map[string]interface{}{}}, nil)
	var cols []metav1.TableColumnDefinition
	if empty != nil {
		cols = empty.ColumnDefinitions
	}
	row := func(obj runtime.Object) []interface{} {
		t, err := cs.table.ConvertToTable(context.Background(), obj, nil)
		if err != nil || len(t.Rows) != 1 {
			return make([]interface{}, len(cols))
		}
		return t.Rows[0].Cells
	}
	return cols, row
}

// pathParts splits a simple JSON path (".spec.replicas") into its keys.
func pathParts(p string) []string {
	return strings.Split(strings.TrimPrefix(p, "."), ".")
}

func intAt(obj map[string]interface{}, p string) int64 {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, pathParts(p)...)
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

func setPath(obj map[string]interface{}, p string, v int64) {
	_ = unstructured.SetNestedField(obj, v, pathParts(p)...)
}

// UnknownFields lists the paths of the fields of u that res's schema does
// not know, which pruning drops ("spec.colour"), and of the fields of its
// metadata and of embedded objects' metadata that ObjectMeta does not
// know ("metadata.colour"). u is not changed.
func UnknownFields(res *Resource, u *unstructured.Unstructured) []string {
	obj := runtime.DeepCopyJSON(u.Object)
	_, unknown := schemaobjectmeta.CoerceWithOptions(nil, obj, res.Custom.Schema, true,
		schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
	pruned := structuralpruning.PruneWithOptions(obj, res.Custom.Schema, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	return append(unknown, pruned...)
}

// EncodeCustom is the stored form of a custom object: JSON in the storage
// version, without resourceVersion. An object of another version is
// converted first (strategy Webhook); u is not changed.
func EncodeCustom(res *Resource, u *unstructured.Unstructured) ([]byte, error) {
	storage := res.Group + "/" + res.Custom.StorageVersion
	if res.Custom.Converter != nil && u.GetAPIVersion() != storage {
		converted, err := convert(res, u, storage)
		if err != nil {
			return nil, err
		}
		converted.SetResourceVersion("")
		return json.Marshal(converted.Object)
	}
	rv := u.GetResourceVersion()
	apiVersion := u.GetAPIVersion()
	u.SetResourceVersion("")
	u.SetAPIVersion(storage)
	defer func() {
		u.SetResourceVersion(rv)
		u.SetAPIVersion(apiVersion)
	}()
	return json.Marshal(u.Object)
}

// DecodeCustom decodes a stored custom object as served by res: its
// apiVersion rewritten to res's version (strategy None) or the object
// converted to it (Webhook, then pruned to res's schema) and, as upstream
// reads from storage, the schema's defaults applied (a default added to
// the definition since the object was written shows).
func DecodeCustom(res *Resource, value []byte) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := UnmarshalCustom(value, u); err != nil {
		return nil, err
	}
	want := res.GroupVersion().String()
	if res.Custom.Converter != nil && u.GetAPIVersion() != want {
		converted, err := convert(res, u, want)
		if err != nil {
			return nil, err
		}
		u = converted
		structuralpruning.Prune(u.Object, res.Custom.Schema, true)
	}
	u.SetAPIVersion(want)
	u.SetKind(res.Kind)
	structuraldefaulting.Default(u.Object, res.Custom.Schema)
	return u, nil
}

// UnmarshalCustom decodes JSON into u, keeping integers int64 as
// unstructured objects hold them.
func UnmarshalCustom(data []byte, u *unstructured.Unstructured) error {
	var m map[string]interface{}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &m); err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("not a JSON object")
	}
	u.Object = m
	return nil
}
