package registry

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"
)

func validAPIService() *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com"},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: "wardle.example.com", Version: "v1alpha1",
			Service:               &apiregistrationv1.ServiceReference{Namespace: "sample", Name: "api", Port: ptr.To[int32](443)},
			InsecureSkipTLSVerify: true, GroupPriorityMinimum: 2000, VersionPriority: 200,
		},
	}
}

func TestValidateAPIService(t *testing.T) {
	tests := []struct {
		name   string
		change func(*apiregistrationv1.APIService)
		fields []string // the fields of the violations, none for a valid object
	}{
		{"valid", func(*apiregistrationv1.APIService) {}, nil},
		{"local core", func(a *apiregistrationv1.APIService) {
			a.Name, a.Spec = "v1.", apiregistrationv1.APIServiceSpec{Version: "v1", GroupPriorityMinimum: 18000, VersionPriority: 1}
		}, nil},
		{"name not version.group", func(a *apiregistrationv1.APIService) { a.Name = "v1.wardle.example.com" }, []string{"metadata.name"}},
		{"empty group not v1", func(a *apiregistrationv1.APIService) { a.Name, a.Spec.Group = "v1alpha1.", "" }, []string{"spec.group"}},
		{"bad version", func(a *apiregistrationv1.APIService) { a.Name, a.Spec.Version = "V1.wardle.example.com", "V1" }, []string{"spec.version"}},
		{"group priority", func(a *apiregistrationv1.APIService) { a.Spec.GroupPriorityMinimum = 0 }, []string{"spec.groupPriorityMinimum"}},
		{"version priority", func(a *apiregistrationv1.APIService) { a.Spec.VersionPriority = 1001 }, []string{"spec.versionPriority"}},
		{"skip and caBundle", func(a *apiregistrationv1.APIService) { a.Spec.CABundle = []byte("x") }, []string{"spec.insecureSkipTLSVerify"}},
		{"service without name", func(a *apiregistrationv1.APIService) { a.Spec.Service.Name = "" }, []string{"spec.service.name"}},
		{"bad port", func(a *apiregistrationv1.APIService) { a.Spec.Service.Port = ptr.To[int32](70000) }, []string{"spec.service.port"}},
		{"local with caBundle", func(a *apiregistrationv1.APIService) {
			a.Spec.Service, a.Spec.InsecureSkipTLSVerify, a.Spec.CABundle = nil, false, []byte("x")
		}, []string{"spec.caBundle"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := validAPIService()
			tc.change(a)
			var got []string
			for _, e := range apiServiceResource.ValidateCreate(a) {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("ValidateCreate fields = %v, want %v", got, tc.fields)
			}
		})
	}
}
