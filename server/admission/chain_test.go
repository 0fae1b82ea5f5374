package admission

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

func TestResourceMatches(t *testing.T) {
	tests := []struct {
		rules         []string
		resource, sub string
		want          bool
	}{
		{[]string{"pods"}, "pods", "", true},
		{[]string{"pods"}, "pods", "status", false},
		{[]string{"pods/status"}, "pods", "status", true},
		{[]string{"pods/status"}, "pods", "", false},
		{[]string{"pods/*"}, "pods", "status", true},
		{[]string{"pods/*"}, "pods", "", true},
		{[]string{"*"}, "services", "", true},
		{[]string{"*"}, "pods", "status", false},
		{[]string{"*/status"}, "deployments", "status", true},
		{[]string{"*/status"}, "deployments", "scale", false},
		{[]string{"*/*"}, "pods", "exec", true},
		{[]string{"configmaps"}, "secrets", "", false},
	}
	for _, tc := range tests {
		if got := resourceMatches(tc.rules, tc.resource, tc.sub); got != tc.want {
			t.Errorf("resourceMatches(%v, %q, %q) = %v, want %v", tc.rules, tc.resource, tc.sub, got, tc.want)
		}
	}
}

func TestScopeMatches(t *testing.T) {
	rule := func(s admissionregistrationv1.ScopeType) *admissionregistrationv1.RuleWithOperations {
		return &admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}, Scope: &s},
		}
	}
	ns := &Attributes{Operation: admissionv1.Create, Resource: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespaced: true}
	cl := &Attributes{Operation: admissionv1.Create, Resource: schema.GroupVersionResource{Version: "v1", Resource: "nodes"}}
	for _, tc := range []struct {
		scope  admissionregistrationv1.ScopeType
		a      *Attributes
		want   bool
		aLabel string
	}{
		{admissionregistrationv1.NamespacedScope, ns, true, "pods"},
		{admissionregistrationv1.NamespacedScope, cl, false, "nodes"},
		{admissionregistrationv1.ClusterScope, cl, true, "nodes"},
		{admissionregistrationv1.ClusterScope, ns, false, "pods"},
		{admissionregistrationv1.AllScopes, ns, true, "pods"},
	} {
		if got := ruleMatches(rule(tc.scope), tc.a); got != tc.want {
			t.Errorf("scope %s on %s = %v, want %v", tc.scope, tc.aLabel, got, tc.want)
		}
	}
}

// servingCert returns a CA certificate (PEM) and a serving certificate it
// signed for dnsName (an IP address: for that address).
func servingCert(t testing.TB, dnsName string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	if ip := net.ParseIP(dnsName); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{dnsName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// reviewServer answers every review with resp (its uid filled in) and
// sends each request it gets on got.
func reviewServer(t testing.TB, cert tls.Certificate, resp admissionv1.AdmissionResponse, got chan<- *admissionv1.AdmissionReview) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		seen := review
		seen.Kind = r.URL.RawQuery // the query the call came with
		got <- &seen
		out := resp
		out.UID = review.Request.UID
		review.Response, review.Request = &out, nil
		json.NewEncoder(w).Encode(&review)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// dialTo is a ServiceDialer that reaches one address whatever the
// service, recording what it was asked for.
type dialTo struct {
	addr  string
	asked chan string
}

func (d dialTo) DialService(ctx context.Context, ns, name string, port int32) (net.Conn, error) {
	d.asked <- fmt.Sprintf("%s/%s:%d", ns, name, port)
	var dl net.Dialer
	return dl.DialContext(ctx, "tcp", d.addr)
}

func configMapAttributes(op admissionv1.Operation, dryRun bool) *Attributes {
	return &Attributes{
		Operation: op, Kind: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"},
		Resource:   schema.GroupVersionResource{Version: "v1", Resource: "configmaps"},
		Namespaced: true, Namespace: "default", Name: "c",
		Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}}, DryRun: dryRun,
	}
}

func validatingConfig(name string, cc admissionregistrationv1.WebhookClientConfig, side admissionregistrationv1.SideEffectClass, versions ...string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: name + ".example.com", ClientConfig: cc,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
			SideEffects: &side, AdmissionReviewVersions: versions,
		}},
	}
}

// TestServiceWebhook checks that a service webhook is dialed through the
// ServiceDialer and its certificate checked for SERVICE.NAMESPACE.svc
// against the caBundle, with the v1beta1 review of a webhook that only
// accepts that.
func TestServiceWebhook(t *testing.T) {
	ca, cert := servingCert(t, "hook.webhooks.svc")
	got := make(chan *admissionv1.AdmissionReview, 1)
	srv := reviewServer(t, cert, admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "from the service"}}, got)
	d := dialTo{addr: srv.Listener.Addr().String(), asked: make(chan string, 1)}
	c := New(Config{Services: d})
	cc := admissionregistrationv1.WebhookClientConfig{
		Service:  &admissionregistrationv1.ServiceReference{Namespace: "webhooks", Name: "hook", Path: ptr.To("/check"), Port: ptr.To(int32(8))},
		CABundle: ca,
	}
	c.Update(Configurations{Validating: []*admissionregistrationv1.ValidatingWebhookConfiguration{
		validatingConfig("svc", cc, admissionregistrationv1.SideEffectClassNone, "v1beta1"),
	}})
	_, err := c.Validate(context.Background(), configMapAttributes(admissionv1.Create, false))
	if !apierrors.IsForbidden(err) || err.Error() != `admission webhook "svc.example.com" denied the request: from the service` {
		t.Errorf("Validate = %v, want the service's denial", err)
	}
	if asked := <-d.asked; asked != "webhooks/hook:8" {
		t.Errorf("dialed %q, want webhooks/hook:8", asked)
	}
	if review := <-got; review.APIVersion != "admission.k8s.io/v1beta1" || review.Request.Operation != admissionv1.Create {
		t.Errorf("review %s %s, want admission.k8s.io/v1beta1 CREATE", review.APIVersion, review.Request.Operation)
	} else if review.Kind != "timeout=10s" {
		t.Errorf("called with query %q, want timeout=10s", review.Kind)
	}

	// A refusal that gives only a reason is explained by it.
	reasonOnly := reviewServer(t, cert, admissionv1.AdmissionResponse{Result: &metav1.Status{Reason: "unwanted data"}}, got)
	d.addr = reasonOnly.Listener.Addr().String()
	c = New(Config{Services: d})
	c.Update(Configurations{Validating: []*admissionregistrationv1.ValidatingWebhookConfiguration{
		validatingConfig("svc", cc, admissionregistrationv1.SideEffectClassNone, "v1"),
	}})
	if _, err := c.Validate(context.Background(), configMapAttributes(admissionv1.Create, false)); err == nil ||
		err.Error() != `admission webhook "svc.example.com" denied the request: unwanted data` {
		t.Errorf("Validate = %v, want the reason as the explanation", err)
	}
	<-d.asked
	<-got

	// Another CA: the certificate is refused, and failurePolicy Fail
	// denies with 500.
	other, _ := servingCert(t, "hook.webhooks.svc")
	cc.CABundle = other
	c.Update(Configurations{Validating: []*admissionregistrationv1.ValidatingWebhookConfiguration{
		validatingConfig("svc", cc, admissionregistrationv1.SideEffectClassNone, "v1"),
	}})
	_, err = c.Validate(context.Background(), configMapAttributes(admissionv1.Create, false))
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), `failed calling webhook "svc.example.com"`) ||
		!strings.Contains(err.Error(), "x509") {
		t.Errorf("Validate with the wrong CA = %v, want 500 for the certificate", err)
	}
	<-d.asked
}

// TestDryRunSideEffects checks that a webhook with side effects refuses
// a dry run (400) without being called, and is called otherwise.
func TestDryRunSideEffects(t *testing.T) {
	ca, cert := servingCert(t, "hook.side.svc")
	got := make(chan *admissionv1.AdmissionReview, 4)
	srv := reviewServer(t, cert, admissionv1.AdmissionResponse{Allowed: true}, got)
	d := dialTo{addr: srv.Listener.Addr().String(), asked: make(chan string, 4)}
	cc := admissionregistrationv1.WebhookClientConfig{
		Service:  &admissionregistrationv1.ServiceReference{Namespace: "side", Name: "hook", Port: ptr.To(int32(443))},
		CABundle: ca,
	}
	c := New(Config{Services: d})
	c.Update(Configurations{Validating: []*admissionregistrationv1.ValidatingWebhookConfiguration{
		validatingConfig("side", cc, admissionregistrationv1.SideEffectClassUnknown, "v1"),
	}})
	_, err := c.Validate(context.Background(), configMapAttributes(admissionv1.Create, true))
	if !apierrors.IsBadRequest(err) {
		t.Errorf("dry run = %v, want 400", err)
	}
	if len(got) != 0 || len(d.asked) != 0 {
		t.Errorf("the webhook was called for a dry run")
	}
	if _, err := c.Validate(context.Background(), configMapAttributes(admissionv1.Create, false)); err != nil {
		t.Errorf("Validate without dry run = %v, want allowed", err)
	}
	if review := <-got; review.Request.DryRun == nil || *review.Request.DryRun {
		t.Errorf("review dryRun = %v, want false", review.Request.DryRun)
	}
}

// TestWebhookRedirectIsAnError checks that a webhook answering with a
// redirect fails the call (failurePolicy Fail: 500) rather than being
// followed.
func TestWebhookRedirectIsAnError(t *testing.T) {
	ca, cert := servingCert(t, "127.0.0.1")
	followed := make(chan *admissionv1.AdmissionReview, 1)
	target := reviewServer(t, cert, admissionv1.AdmissionResponse{Allowed: true}, followed)
	redirect := httptest.NewUnstartedServer(http.RedirectHandler(target.URL+"/v", http.StatusTemporaryRedirect))
	redirect.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	redirect.StartTLS()
	t.Cleanup(redirect.Close)
	url := redirect.URL + "/v"
	c := New(Config{})
	c.Update(Configurations{Validating: []*admissionregistrationv1.ValidatingWebhookConfiguration{
		validatingConfig("redirect", admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca}, admissionregistrationv1.SideEffectClassNone, "v1"),
	}})
	_, err := c.Validate(context.Background(), configMapAttributes(admissionv1.Create, false))
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "307") {
		t.Errorf("Validate = %v, want 500 naming the 307", err)
	}
	if len(followed) != 0 {
		t.Errorf("the redirect was followed")
	}
}
