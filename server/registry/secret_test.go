package registry

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func validSecret() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}
}

// typedSecret is a valid Secret of type typ with data.
func typedSecret(typ corev1.SecretType, data map[string][]byte) func() *corev1.Secret {
	return func() *corev1.Secret {
		s := validSecret()
		s.Type, s.Data = typ, data
		return s
	}
}

func TestSecretDefaults(t *testing.T) {
	s := validSecret()
	s.Data["user"] = []byte("old")
	s.StringData = map[string]string{"user": "admin", "host": "db.local"}
	secretResource.PrepareForCreate(s)
	want := map[string][]byte{"password": []byte("s3cret"), "user": []byte("admin"), "host": []byte("db.local")}
	if diff := cmp.Diff(want, s.Data); diff != "" {
		t.Errorf("data after merging stringData (-want +got):\n%s", diff)
	}
	if s.StringData != nil || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("stringData %v, type %q; want none and Opaque", s.StringData, s.Type)
	}
	only := &corev1.Secret{StringData: map[string]string{"k": "v"}}
	secretResource.PrepareForCreate(only)
	if string(only.Data["k"]) != "v" {
		t.Errorf("stringData without data: data = %v, want k=v", only.Data)
	}
}

func TestValidateSecret(t *testing.T) {
	big := make([]byte, 3<<19) // 1.5 MiB
	runValidation(t, secretResource, validSecret, []validationCase[*corev1.Secret]{
		{name: "valid"},
		{"1.5 MiB", func(s *corev1.Secret) { s.Data["big"] = big }, []string{errKey(tooLong, "data")}},
		{"1 MiB in several keys", func(s *corev1.Secret) {
			s.Data = map[string][]byte{"a": big[:MaxDataSize/2], "b": big[:MaxDataSize/2]}
		}, nil},
		{"just over 1 MiB in several keys", func(s *corev1.Secret) {
			s.Data = map[string][]byte{"a": big[:MaxDataSize/2], "b": big[:MaxDataSize/2+1]}
		}, []string{errKey(tooLong, "data")}},
		{"key with a slash", func(s *corev1.Secret) { s.Data["a/b"] = nil }, []string{errKey(invalid, "data[a/b]")}},
		{"stringData key checked as data", func(s *corev1.Secret) {
			s.StringData = map[string]string{"a/b": "x"}
			secretResource.PrepareForCreate(s)
		}, []string{errKey(invalid, "data[a/b]")}},
		{"custom type", func(s *corev1.Secret) { s.Type = "example.com/anything" }, nil},
		{"no name", func(s *corev1.Secret) { s.Name = "" }, []string{errKey(required, "metadata.name")}},
	})
}

func TestValidateSecretTypes(t *testing.T) {
	b := []byte("x")
	cases := []struct {
		name string
		typ  corev1.SecretType
		data map[string][]byte
		want []string
	}{
		{"opaque empty", corev1.SecretTypeOpaque, nil, nil},
		{"dockercfg", corev1.SecretTypeDockercfg, map[string][]byte{".dockercfg": []byte(`{"r.io":{}}`)}, nil},
		{"dockercfg missing", corev1.SecretTypeDockercfg, nil, []string{errKey(required, "data[.dockercfg]")}},
		{"dockercfg not JSON", corev1.SecretTypeDockercfg, map[string][]byte{".dockercfg": b}, []string{errKey(invalid, "data[.dockercfg]")}},
		{"dockerconfigjson", corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}, nil},
		{"dockerconfigjson missing", corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockercfg": []byte(`{}`)},
			[]string{errKey(required, "data[.dockerconfigjson]")}},
		{"dockerconfigjson an array", corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte(`[]`)},
			[]string{errKey(invalid, "data[.dockerconfigjson]")}},
		{"basic-auth username only", corev1.SecretTypeBasicAuth, map[string][]byte{"username": b}, nil},
		{"basic-auth password only", corev1.SecretTypeBasicAuth, map[string][]byte{"password": nil}, nil},
		{"basic-auth neither", corev1.SecretTypeBasicAuth, nil,
			[]string{errKey(required, "data[username]"), errKey(required, "data[password]")}},
		{"ssh-auth", corev1.SecretTypeSSHAuth, map[string][]byte{"ssh-privatekey": b}, nil},
		{"ssh-auth empty key", corev1.SecretTypeSSHAuth, map[string][]byte{"ssh-privatekey": nil},
			[]string{errKey(required, "data[ssh-privatekey]")}},
		{"tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": b, "tls.key": b}, nil},
		{"tls without key", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": b}, []string{errKey(required, "data[tls.key]")}},
		{"tls without either", corev1.SecretTypeTLS, nil,
			[]string{errKey(required, "data[tls.crt]"), errKey(required, "data[tls.key]")}},
		{"bootstrap token", corev1.SecretTypeBootstrapToken, map[string][]byte{"token-id": b, "token-secret": b}, nil},
		{"bootstrap token without secret", corev1.SecretTypeBootstrapToken, map[string][]byte{"token-id": b},
			[]string{errKey(required, "data[token-secret]")}},
		{"service account token without its account", corev1.SecretTypeServiceAccountToken, nil,
			[]string{errKey(required, "metadata.annotations[kubernetes.io/service-account.name]")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := typedSecret(tc.typ, tc.data)()
			if diff := cmp.Diff(tc.want, errorKeys(secretResource.ValidateCreate(s))); diff != "" {
				t.Errorf("validate errors (-want +got):\n%s", diff)
			}
		})
	}
	sa := typedSecret(corev1.SecretTypeServiceAccountToken, nil)()
	sa.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
	if errs := secretResource.ValidateCreate(sa); len(errs) != 0 {
		t.Errorf("service account token with its account: %v, want no error", errs)
	}
}

// TestSecretErrorsHideValues checks that no error carries secret content:
// errors reach clients and logs.
func TestSecretErrorsHideValues(t *testing.T) {
	s := typedSecret(corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("hunter2")})()
	s.Data["big"] = make([]byte, MaxDataSize)
	errs := secretResource.ValidateCreate(s)
	if len(errs) != 2 {
		t.Fatalf("errors = %v, want 2", errs)
	}
	for _, e := range errs {
		if got := e.Error(); strings.Contains(got, "hunter2") {
			t.Errorf("error %q shows the secret", got)
		}
	}
}

func TestSecretUpdate(t *testing.T) {
	tls := func() *corev1.Secret {
		return stored(secretResource, typedSecret(corev1.SecretTypeTLS, map[string][]byte{"tls.crt": {1}, "tls.key": {2}})())
	}
	runUpdate(t, secretResource, false, tls, []validationCase[*corev1.Secret]{
		{"data", func(s *corev1.Secret) { s.Data["tls.crt"] = []byte{3} }, nil},
		{"type", func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }, []string{errKey(invalid, "type")}},
		{"type emptied defaults to Opaque", func(s *corev1.Secret) { s.Type = "" }, []string{errKey(invalid, "type")}},
		{"required key removed", func(s *corev1.Secret) { delete(s.Data, "tls.key") }, []string{errKey(required, "data[tls.key]")}},
	})
	immutable := func() *corev1.Secret {
		s := stored(secretResource, validSecret())
		s.Immutable = ptrTo(true)
		return s
	}
	runUpdate(t, secretResource, false, immutable, []validationCase[*corev1.Secret]{
		{"annotations may change", func(s *corev1.Secret) { s.Annotations = map[string]string{"a": "b"} }, nil},
		{"data", func(s *corev1.Secret) { s.Data["password"] = []byte("new") }, []string{errKey(forbidden, "data")}},
		{"stringData", func(s *corev1.Secret) { s.StringData = map[string]string{"password": "new"} }, []string{errKey(forbidden, "data")}},
		{"stringData with the same value", func(s *corev1.Secret) { s.StringData = map[string]string{"password": "s3cret"} }, nil},
		{"back to mutable", func(s *corev1.Secret) { s.Immutable = nil }, []string{errKey(forbidden, "immutable")}},
	})
}

func TestSecretFieldSetAndRow(t *testing.T) {
	s := stored(secretResource, typedSecret(corev1.SecretTypeTLS, map[string][]byte{"tls.crt": {1}, "tls.key": {2}})())
	want := fields.Set{"metadata.name": "db", "metadata.namespace": "default", "type": "kubernetes.io/tls"}
	if diff := cmp.Diff(want, secretResource.FieldSet(s)); diff != "" {
		t.Errorf("field set (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]interface{}{"db", "kubernetes.io/tls", int64(2), "60m"}, secretRow(s, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
