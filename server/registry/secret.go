package registry

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Keys a bootstrap token Secret (type bootstrap.kubernetes.io/token)
// must hold, as kubeadm and the bootstrap authenticator read them.
const (
	BootstrapTokenIDKey     = "token-id"
	BootstrapTokenSecretKey = "token-secret"
)

// redacted stands for secret content in an error's bad value: error
// messages reach logs and clients that may not read the Secret.
const redacted = "<secret contents redacted>"

var secretResource = newSecretResource()

func newSecretResource() *Resource {
	r := &Resource{
		Name:       "secrets",
		Singular:   "secret",
		Kind:       "Secret",
		Namespaced: true,

		New:     func() runtime.Object { return &corev1.Secret{} },
		NewList: func() runtime.Object { return &corev1.SecretList{} },

		PrepareForCreate:       mutate(defaultSecret),
		PrepareForUpdate:       mutatePair(prepareSecretForUpdate),
		PrepareForStatusUpdate: mutatePair(prepareSecretForStatusUpdate),

		ValidateCreate:       check(validateSecret),
		ValidateUpdate:       checkPair(validateSecretUpdate),
		ValidateStatusUpdate: checkPair(validateSecretUpdate),

		FieldSet: selectable(secretFields),
		Columns:  secretColumns,
		Row:      printable(secretRow),
	}
	notScalable(r)
	return r
}

// defaultSecret makes the type Opaque when unset and merges stringData,
// a write-only convenience, into data: its keys win, and it is never
// stored or returned.
func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

func prepareSecretForUpdate(s, old *corev1.Secret) {
	defaultSecret(s)
	s.Generation = old.Generation
}

// prepareSecretForStatusUpdate keeps everything but metadata: Secrets
// have no status (and no status subresource).
func prepareSecretForStatusUpdate(s, old *corev1.Secret) {
	s.Data, s.StringData, s.Type, s.Immutable = old.Data, nil, old.Type, old.Immutable
	s.Generation = old.Generation
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateSecretData(s)...)
}

// validateSecretData checks the keys and total size of data, and what
// the type requires.
func validateSecretData(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, key := range sortedKeys(s.Data) {
		errs = append(errs, validateDataKey(key, dataPath.Key(key))...)
		size += len(s.Data[key])
	}
	if size > MaxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", MaxDataSize))
	}
	return append(errs, validateSecretType(s)...)
}

// validateSecretType checks the keys each built-in type requires. Other
// types are the user's and carry anything.
func validateSecretType(s *corev1.Secret) field.ErrorList {
	has := func(k string) bool { _, ok := s.Data[k]; return ok }
	var missing []string
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		// The token itself is added later by whoever issues it.
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			return field.ErrorList{field.Required(metadataPath.Child("annotations").Key(corev1.ServiceAccountNameKey), "")}
		}
	case corev1.SecretTypeDockercfg:
		return validateJSONKey(s.Data, corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		return validateJSONKey(s.Data, corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		// Either may be empty, but one of them must be there.
		if !has(corev1.BasicAuthUsernameKey) && !has(corev1.BasicAuthPasswordKey) {
			missing = []string{corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey}
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			missing = []string{corev1.SSHAuthPrivateKey}
		}
	case corev1.SecretTypeTLS:
		missing = absent(has, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	case corev1.SecretTypeBootstrapToken:
		missing = absent(has, BootstrapTokenIDKey, BootstrapTokenSecretKey)
	}
	var errs field.ErrorList
	for _, k := range missing {
		errs = append(errs, field.Required(dataPath.Key(k), ""))
	}
	return errs
}

// absent returns the keys has does not find.
func absent(has func(string) bool, keys ...string) []string {
	var out []string
	for _, k := range keys {
		if !has(k) {
			out = append(out, k)
		}
	}
	return out
}

// validateJSONKey requires data[key] to be a JSON object, as the
// container runtime parses it for registry credentials.
func validateJSONKey(data map[string][]byte, key string) field.ErrorList {
	v, ok := data[key]
	if !ok {
		return field.ErrorList{field.Required(dataPath.Key(key), "")}
	}
	if err := json.Unmarshal(v, &map[string]interface{}{}); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), redacted, err.Error())}
	}
	return nil
}

// validateSecretUpdate keeps the type, and once a Secret is immutable,
// its data and the flag itself.
func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	errs := validateMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, apivalidation.ValidateImmutableField(s.Type, old.Type, field.NewPath("type"))...)
	if isTrue(old.Immutable) {
		// stringData is already merged into data here.
		errs = append(errs, immutableErrors(s.Immutable, []immutableField{{dataPath, s.Data, old.Data}})...)
	}
	return append(errs, validateSecretData(s)...)
}

// secretFields adds type, the one field Kubernetes selects Secrets by.
func secretFields(s *corev1.Secret) fields.Set {
	return metaFields(&s.ObjectMeta, fields.Set{"type": string(s.Type)})
}

var secretColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	column("Type", "string", corev1.Secret{}.SwaggerDoc()["type"], false),
	column("Data", "string", corev1.Secret{}.SwaggerDoc()["data"], false),
	ageColumn(),
}

func secretRow(s *corev1.Secret, now time.Time) []interface{} {
	return []interface{}{s.Name, string(s.Type), int64(len(s.Data)), since(s.CreationTimestamp.Time, now)}
}
