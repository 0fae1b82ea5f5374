package apiserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"

	"github.com/minik-dev/minik/server/auth"
)

// servingCert returns a self-signed certificate for dnsName and its PEM.
func servingCert(t *testing.T, dnsName string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// tunnelTo stands in for the node tunnel: every pod it is asked to reach
// is the listener at addr.
type tunnelTo struct {
	addr string
	mu   sync.Mutex
	pods []string
}

func (d *tunnelTo) ServePodSubresource(w http.ResponseWriter, _ *http.Request, _ *corev1.Pod, _ string) {
	http.Error(w, "not served", http.StatusNotFound)
}

func (d *tunnelTo) DialPod(ctx context.Context, pod *corev1.Pod, port int) (net.Conn, error) {
	d.mu.Lock()
	d.pods = append(d.pods, pod.Name)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.addr)
}

// wardleBackend is a TLS server for api.default.svc serving the
// wardle.example.com/v1alpha1 discovery document and a list of flunders.
type wardleBackend struct {
	*httptest.Server
	caPEM []byte
	mu    sync.Mutex
	seen  http.Header // the headers of the last list
	// discoverySeen are the headers of the last discovery request.
	discoverySeen http.Header
	// peer is the common name of the client certificate of the last
	// list, "" without one.
	peer string
}

func newWardleBackend(t *testing.T) *wardleBackend {
	cert, caPEM := servingCert(t, "api.default.svc")
	b := &wardleBackend{caPEM: caPEM}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /apis/wardle.example.com/v1alpha1", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.discoverySeen = r.Header.Clone()
		b.mu.Unlock()
		writeJSON(w, http.StatusOK, &metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "wardle.example.com/v1alpha1",
			APIResources: []metav1.APIResource{
				{Name: "flunders", SingularName: "flunder", Namespaced: true, Kind: "Flunder", Verbs: metav1.Verbs{"create", "get", "list"}},
				{Name: "flunders/status", Namespaced: true, Kind: "Flunder", Verbs: metav1.Verbs{"get", "update"}},
			},
		})
	})
	mux.HandleFunc("GET /apis/wardle.example.com/v1alpha1/namespaces/default/flunders", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = r.Header.Clone()
		b.peer = ""
		if len(r.TLS.PeerCertificates) > 0 {
			b.peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"FlunderList","apiVersion":"wardle.example.com/v1alpha1","metadata":{},"items":[]}`))
	})
	b.Server = httptest.NewUnstartedServer(mux)
	b.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

// serveBehind creates pod api-0 and Service api (443 → 8443) with its
// endpoints in default.
func (ts *testServer) serveBehind(t *testing.T) {
	t.Helper()
	ctx := testContext(t)
	cs := ts.client.CoreV1()
	if _, err := cs.Pods("default").Create(ctx, testPod("api-0", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)},
	}}}
	if _, err := cs.Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.42.0.9", TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "api-0", Namespace: "default"}}},
		Ports:     []corev1.EndpointPort{{Name: "https", Port: 8443}},
	}}}
	if _, err := cs.Endpoints("default").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func wardleAPIService(name, group string, ca []byte) *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: group, Version: "v1alpha1", CABundle: ca,
			Service:              &apiregistrationv1.ServiceReference{Namespace: "default", Name: "api", Port: ptr.To[int32](443)},
			GroupPriorityMinimum: 2000, VersionPriority: 200,
		},
	}
}

// createAPIService creates a through the REST API.
func (ts *testServer) createAPIService(t *testing.T, a *apiregistrationv1.APIService) {
	t.Helper()
	body, _ := json.Marshal(a)
	resp, err := http.Post(ts.url+"/apis/apiregistration.k8s.io/v1/apiservices", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create APIService %s = %d, want 201", a.Name, resp.StatusCode)
	}
}

// waitAvailable waits until APIService name's Available condition has
// status and reason, and returns its message.
func (ts *testServer) waitAvailable(t *testing.T, name string, status apiregistrationv1.ConditionStatus, reason string) string {
	t.Helper()
	ctx := testContext(t)
	var last apiregistrationv1.APIService
	for {
		var a apiregistrationv1.APIService
		if ts.getJSON(t, "/apis/apiregistration.k8s.io/v1/apiservices/"+name, "", &a) == http.StatusOK {
			last = a
			for _, c := range a.Status.Conditions {
				if c.Type == apiregistrationv1.Available && c.Status == status && c.Reason == reason {
					return c.Message
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("APIService %s not Available=%s (%s): %+v", name, status, reason, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestLocalAPIServices(t *testing.T) {
	ts := newTestServer(t)
	ts.waitAvailable(t, "v1.", apiregistrationv1.ConditionTrue, "Local")
	ts.waitAvailable(t, "v1.apps", apiregistrationv1.ConditionTrue, "Local")
	crd := ts.establish(t, widgetCRD(t))
	ts.waitAvailable(t, "v1.example.com", apiregistrationv1.ConditionTrue, "Local")
	ctx := testContext(t)
	if err := ts.crdClient(t).ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for ts.getJSON(t, "/apis/apiregistration.k8s.io/v1/apiservices/v1.example.com", "", nil) != http.StatusNotFound {
		select {
		case <-ctx.Done():
			t.Fatalf("APIService v1.example.com remains after its definition was deleted")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestAPIServiceProxy(t *testing.T) {
	ts := newTestServer(t)
	backend := newWardleBackend(t)
	tunnel := &tunnelTo{addr: backend.Listener.Addr().String()}
	ts.cfg.PodStreams = tunnel
	ts.serveBehind(t)
	ts.createAPIService(t, wardleAPIService("v1alpha1.wardle.example.com", "wardle.example.com", backend.caPEM))
	ts.waitAvailable(t, "v1alpha1.wardle.example.com", apiregistrationv1.ConditionTrue, "Passed")

	var list struct{ Kind string }
	if code := ts.getJSON(t, "/apis/wardle.example.com/v1alpha1/namespaces/default/flunders", "", &list); code != http.StatusOK || list.Kind != "FlunderList" {
		t.Fatalf("GET flunders = %d %q, want 200 FlunderList from the service", code, list.Kind)
	}
	backend.mu.Lock()
	if got := backend.seen.Get("X-Remote-User"); got != "system:admin" {
		t.Errorf("service saw X-Remote-User %q, want system:admin", got)
	}
	backend.mu.Unlock()
	tunnel.mu.Lock()
	if len(tunnel.pods) == 0 || tunnel.pods[0] != "api-0" {
		t.Errorf("tunnel dialed pods %v, want api-0", tunnel.pods)
	}
	tunnel.mu.Unlock()

	var group metav1.APIGroup
	if code := ts.getJSON(t, "/apis/wardle.example.com", "", &group); code != http.StatusOK || group.PreferredVersion.Version != "v1alpha1" {
		t.Errorf("GET /apis/wardle.example.com = %d %+v, want v1alpha1 preferred", code, group)
	}
	apis, _ := ts.getAggregated(t, "/apis")
	fl := findResource(apis, "wardle.example.com", "v1alpha1", "flunders")
	if fl == nil || len(fl.Subresources) != 1 || fl.Subresources[0].Subresource != "status" {
		t.Fatalf("aggregated /apis flunders = %+v, want it with its status subresource", fl)
	}
	dc := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: ts.url, QPS: -1})
	for _, legacy := range []bool{true, false} {
		dc.UseLegacyDiscovery = legacy
		_, lists, err := dc.ServerGroupsAndResources()
		if err != nil {
			t.Fatalf("ServerGroupsAndResources(legacy=%v): %v", legacy, err)
		}
		found := false
		for _, l := range lists {
			for _, r := range l.APIResources {
				found = found || (l.GroupVersion == "wardle.example.com/v1alpha1" && r.Name == "flunders")
			}
		}
		if !found {
			t.Errorf("discovery (legacy=%v) lacks wardle.example.com/v1alpha1 flunders", legacy)
		}
	}
}

func TestAPIServiceUnavailable(t *testing.T) {
	ts := newTestServer(t)
	backend := newWardleBackend(t)
	ts.cfg.PodStreams = &tunnelTo{addr: backend.Listener.Addr().String()}
	// A caBundle that did not sign the service's certificate.
	_, otherCA := servingCert(t, "api.default.svc")
	ts.createAPIService(t, wardleAPIService("v1alpha1.nosvc.example.com", "nosvc.example.com", otherCA))
	ts.waitAvailable(t, "v1alpha1.nosvc.example.com", apiregistrationv1.ConditionFalse, "ServiceNotFound")
	ts.serveBehind(t)
	ts.createAPIService(t, wardleAPIService("v1alpha1.wardle.example.com", "wardle.example.com", otherCA))
	ts.waitAvailable(t, "v1alpha1.wardle.example.com", apiregistrationv1.ConditionFalse, "FailedDiscoveryCheck")

	var st metav1.Status
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/apis/wardle.example.com/v1alpha1/namespaces/default/flunders", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || st.Reason != metav1.StatusReasonServiceUnavailable {
		t.Errorf("GET of an unavailable group-version = %d %s, want 503 ServiceUnavailable", resp.StatusCode, st.Reason)
	}
	apis, _ := ts.getAggregated(t, "/apis")
	for _, g := range apis.Items {
		if g.Name == "wardle.example.com" {
			if len(g.Versions) != 1 || g.Versions[0].Freshness != apidiscoveryv2.DiscoveryFreshnessStale {
				t.Errorf("aggregated wardle.example.com = %+v, want v1alpha1 Stale", g.Versions)
			}
			return
		}
	}
	t.Errorf("aggregated /apis lacks the unavailable group wardle.example.com")
}

// denyResource refuses every request for one resource and allows the
// rest, recording the attributes it refused.
type denyResource struct {
	resource string
	mu       sync.Mutex
	denied   []auth.Attributes
}

func (d *denyResource) Authorize(_ context.Context, _ auth.User, at auth.Attributes) (bool, string) {
	if at.Resource != d.resource {
		return true, ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.denied = append(d.denied, at)
	return false, "denied by the test"
}

func TestAPIServiceProxyAuthorizes(t *testing.T) {
	ts := newTestServer(t)
	backend := newWardleBackend(t)
	ts.cfg.PodStreams = &tunnelTo{addr: backend.Listener.Addr().String()}
	ts.serveBehind(t)
	ts.createAPIService(t, wardleAPIService("v1alpha1.wardle.example.com", "wardle.example.com", backend.caPEM))
	ts.waitAvailable(t, "v1alpha1.wardle.example.com", apiregistrationv1.ConditionTrue, "Passed")
	az := &denyResource{resource: "flunders"}
	ts.cfg.Authorizer = az

	code := ts.getJSON(t, "/apis/wardle.example.com/v1alpha1/namespaces/default/flunders/f1", "", nil)
	if code != http.StatusForbidden {
		t.Fatalf("GET of a denied flunder = %d, want 403", code)
	}
	backend.mu.Lock()
	if backend.seen != nil {
		t.Errorf("the service was asked for a request the server refused")
	}
	backend.mu.Unlock()
	want := auth.Attributes{Verb: "get", APIGroup: "wardle.example.com", Resource: "flunders", Namespace: "default", Name: "f1"}
	az.mu.Lock()
	defer az.mu.Unlock()
	if len(az.denied) != 1 || az.denied[0] != want {
		t.Errorf("authorizer was asked %+v, want %+v", az.denied, want)
	}
}
