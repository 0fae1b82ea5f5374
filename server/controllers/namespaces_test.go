package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

func (e *env) createNamespace(name string) {
	e.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.client.CoreV1().Namespaces().Create(e.ctx, ns, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create namespace %q: %v", name, err)
	}
}

func startServiceAccounts(e *env) *ServiceAccountsController {
	e.t.Helper()
	accounts := namedFactory(e.client, Config{}, DefaultServiceAccount)
	c, err := NewServiceAccountsController(e.client, e.factory.Core().V1().Namespaces(), accounts.Core().V1().ServiceAccounts(), e.lg)
	if err != nil {
		e.t.Fatalf("NewServiceAccountsController: %v", err)
	}
	e.run(func(ctx context.Context) error {
		accounts.Start(ctx.Done())
		defer accounts.Shutdown()
		return c.Run(ctx, 2)
	})
	return c
}

// waitServiceAccount waits for the default ServiceAccount of ns, other
// than one with UID not, and returns it.
func (e *env) waitServiceAccount(ns string, not string) *corev1.ServiceAccount {
	e.t.Helper()
	var sa *corev1.ServiceAccount
	e.eventually("default service account in "+ns, func() error {
		var err error
		sa, err = e.client.CoreV1().ServiceAccounts(ns).Get(e.ctx, DefaultServiceAccount, metav1.GetOptions{})
		if err == nil && string(sa.UID) == not {
			return fmt.Errorf("still the deleted one")
		}
		return err
	})
	return sa
}

func TestServiceAccounts(t *testing.T) {
	e := newEnv(t)
	startServiceAccounts(e)
	e.waitServiceAccount("default", "")
	e.waitServiceAccount("kube-system", "")
	e.createNamespace("team-a")
	sa := e.waitServiceAccount("team-a", "")

	if err := e.client.CoreV1().ServiceAccounts("team-a").Delete(e.ctx, DefaultServiceAccount, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	e.waitServiceAccount("team-a", string(sa.UID))

	// A user's change of the account is the user's: it is kept.
	again := e.waitServiceAccount("team-a", "")
	again.AutomountServiceAccountToken = ptr(false)
	if _, err := e.client.CoreV1().ServiceAccounts("team-a").Update(e.ctx, again, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	e.createNamespace("team-b") // a later sync, which must leave team-a's alone
	e.waitServiceAccount("team-b", "")
	got := e.waitServiceAccount("team-a", "")
	if got.AutomountServiceAccountToken == nil || *got.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %v after a later sync, want the user's false", got.AutomountServiceAccountToken)
	}
}

// TestServiceAccountsSkipTerminating syncs a namespace the controller
// sees terminating: nothing is created there.
func TestServiceAccountsSkipTerminating(t *testing.T) {
	e := newEnv(t)
	accounts := namedFactory(e.client, Config{}, DefaultServiceAccount)
	c, err := NewServiceAccountsController(e.client, e.factory.Core().V1().Namespaces(), accounts.Core().V1().ServiceAccounts(), e.lg)
	if err != nil {
		t.Fatal(err)
	}
	e.createNamespace("going")
	now := metav1.Now()
	seen := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "going", DeletionTimestamp: &now},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
	}
	if err := e.factory.Core().V1().Namespaces().Informer().GetIndexer().Add(seen); err != nil {
		t.Fatal(err)
	}
	if err := c.sync(e.ctx, "going"); err != nil {
		t.Fatalf("sync = %v", err)
	}
	if err := c.sync(e.ctx, "absent"); err != nil {
		t.Fatalf("sync of a namespace that does not exist = %v", err)
	}
	_, err = e.client.CoreV1().ServiceAccounts("going").Get(e.ctx, DefaultServiceAccount, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("default service account in a terminating namespace: %v, want NotFound", err)
	}
}

func startRootCA(e *env) {
	e.t.Helper()
	cms := namedFactory(e.client, Config{}, RootCAConfigMap)
	c, err := NewRootCAPublisher(e.client, e.factory.Core().V1().Namespaces(), cms.Core().V1().ConfigMaps(), []byte(testCA), e.lg)
	if err != nil {
		e.t.Fatalf("NewRootCAPublisher: %v", err)
	}
	e.run(func(ctx context.Context) error {
		cms.Start(ctx.Done())
		defer cms.Shutdown()
		return c.Run(ctx, 2)
	})
}

// waitRootCA waits until ns's kube-root-ca.crt holds exactly the CA, in
// a ConfigMap other than one with UID not, and returns it.
func (e *env) waitRootCA(ns, not string) *corev1.ConfigMap {
	e.t.Helper()
	var cm *corev1.ConfigMap
	e.eventually("kube-root-ca.crt in "+ns, func() error {
		var err error
		cm, err = e.client.CoreV1().ConfigMaps(ns).Get(e.ctx, RootCAConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if string(cm.UID) == not {
			return fmt.Errorf("still the old one")
		}
		if diff := cmp.Diff(map[string]string{RootCAKey: testCA}, cm.Data); diff != "" || len(cm.BinaryData) > 0 {
			return fmt.Errorf("data (-want +got):\n%s", diff)
		}
		return nil
	})
	return cm
}

func TestRootCAPublisher(t *testing.T) {
	e := newEnv(t)
	startRootCA(e)
	e.waitRootCA("default", "")
	e.createNamespace("team-a")
	cm := e.waitRootCA("team-a", "")
	cms := e.client.CoreV1().ConfigMaps("team-a")

	edited := cm.DeepCopy()
	edited.Data = map[string]string{RootCAKey: "forged", "extra": "x"}
	if _, err := cms.Update(e.ctx, edited, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := e.waitRootCA("team-a", ""); got.UID != cm.UID {
		t.Errorf("an edited ConfigMap was replaced (uid %s, was %s), want it corrected", got.UID, cm.UID)
	}

	if err := cms.Delete(e.ctx, RootCAConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	cm = e.waitRootCA("team-a", string(cm.UID))

}

// TestRootCAPublisherReplacesImmutable starts the publisher on a wrong
// immutable copy, which cannot be corrected: it is replaced.
func TestRootCAPublisherReplacesImmutable(t *testing.T) {
	e := newEnv(t)
	e.createNamespace("frozen")
	frozen := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: RootCAConfigMap},
		Data:       map[string]string{RootCAKey: "forged"}, Immutable: ptr(true),
	}
	created, err := e.client.CoreV1().ConfigMaps("frozen").Create(e.ctx, frozen, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	startRootCA(e)
	e.waitRootCA("frozen", string(created.UID))
}

func TestRootCAPublisherNeedsCA(t *testing.T) {
	e := newEnv(t)
	f := e.factory.Core().V1()
	if _, err := NewRootCAPublisher(e.client, f.Namespaces(), f.ConfigMaps(), nil, nil); err == nil {
		t.Error("NewRootCAPublisher without a CA succeeded, want an error")
	}
}

// testServers is a set of API servers a test changes.
type testServers struct {
	mu      sync.Mutex
	addrs   []string
	changed chan struct{}
}

func newTestServers(addrs ...string) *testServers {
	return &testServers{addrs: addrs, changed: make(chan struct{})}
}

func (s *testServers) Addresses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

func (s *testServers) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *testServers) set(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs = addrs
	close(s.changed)
	s.changed = make(chan struct{})
}

func (e *env) waitAPIEndpoints(want []corev1.EndpointSubset) {
	e.t.Helper()
	e.eventually("kubernetes endpoints", func() error {
		ep, err := e.client.CoreV1().Endpoints("default").Get(e.ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, ep.Subsets); diff != "" {
			return fmt.Errorf("subsets (-want +got):\n%s", diff)
		}
		if ep.Labels[skipMirrorLabel] != "true" {
			return fmt.Errorf("labels %v, want %s", ep.Labels, skipMirrorLabel)
		}
		return e.apiSlicesMatch(want)
	})
}

// apiSlicesMatch checks that the kubernetes Service's EndpointSlices hold
// the addresses and ports of want, one slice per port, as nodes read them.
func (e *env) apiSlicesMatch(want []corev1.EndpointSubset) error {
	list, err := e.client.DiscoveryV1().EndpointSlices("default").List(e.ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + APIServiceName})
	if err != nil {
		return err
	}
	got := map[int32][]string{}
	for _, s := range list.Items {
		if s.Labels[discoveryv1.LabelManagedBy] != SliceManagerAPIServer || len(s.Ports) != 1 {
			return fmt.Errorf("slice %s: labels %v, ports %v", s.Name, s.Labels, s.Ports)
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
				return fmt.Errorf("slice %s: endpoint %v not ready", s.Name, ep.Addresses)
			}
			got[*s.Ports[0].Port] = append(got[*s.Ports[0].Port], ep.Addresses...)
		}
	}
	wantIPs := map[int32][]string{}
	for _, ss := range want {
		for _, a := range ss.Addresses {
			wantIPs[ss.Ports[0].Port] = append(wantIPs[ss.Ports[0].Port], a.IP)
		}
	}
	if diff := cmp.Diff(wantIPs, got); diff != "" {
		return fmt.Errorf("slice addresses by port (-want +got):\n%s", diff)
	}
	return nil
}

func apiSubset(port int32, ips ...string) corev1.EndpointSubset {
	ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}}}
	for _, ip := range ips {
		ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
	}
	return ss
}

func TestAPIService(t *testing.T) {
	e := newEnv(t)
	servers := newTestServers("10.0.0.6:6443", "10.0.0.5:6443", "127.0.0.1:6443", "api.local:6443")
	c, err := NewAPIServiceController(e.client, e.factory.Core().V1().Services(), e.factory.Core().V1().Endpoints(), e.lg,
		APIServiceOptions{ClusterIP: "10.43.0.1", Port: 6443, Servers: servers})
	if err != nil {
		t.Fatalf("NewAPIServiceController: %v", err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 1) })
	e.waitAPIEndpoints([]corev1.EndpointSubset{apiSubset(6443, "10.0.0.5", "10.0.0.6")})

	svcs := e.client.CoreV1().Services("default")
	svc, err := svcs.Get(e.ctx, APIServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service: %v", err)
	}
	wantPorts := []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(6443)}}
	if svc.Spec.ClusterIP != "10.43.0.1" || svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Selector) != 0 ||
		!cmp.Equal(wantPorts, svc.Spec.Ports) || svc.Labels["provider"] != "kubernetes" {
		t.Errorf("service = %+v, want ClusterIP 10.43.0.1 without a selector, ports %+v", svc.Spec, wantPorts)
	}

	servers.set("10.0.0.5:6443", "10.0.0.7:7443")
	e.waitAPIEndpoints([]corev1.EndpointSubset{apiSubset(6443, "10.0.0.5"), apiSubset(7443, "10.0.0.7")})

	ep, err := e.client.CoreV1().Endpoints("default").Get(e.ctx, APIServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep.Subsets = []corev1.EndpointSubset{apiSubset(1, "10.9.9.9")}
	if _, err := e.client.CoreV1().Endpoints("default").Update(e.ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update endpoints: %v", err)
	}
	e.waitAPIEndpoints([]corev1.EndpointSubset{apiSubset(6443, "10.0.0.5"), apiSubset(7443, "10.0.0.7")})

	svc.Spec.Ports[0].TargetPort = intstr.FromInt32(1)
	if _, err := svcs.Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update service: %v", err)
	}
	e.eventually("service ports put back", func() error {
		got, err := svcs.Get(e.ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantPorts, got.Spec.Ports); diff != "" {
			return fmt.Errorf("ports (-want +got):\n%s", diff)
		}
		return nil
	})

	if err := svcs.Delete(e.ctx, APIServiceName, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete service: %v", err)
	}
	e.eventually("service recreated", func() error {
		got, err := svcs.Get(e.ctx, APIServiceName, metav1.GetOptions{})
		if err == nil && (got.UID == svc.UID || got.Spec.ClusterIP != "10.43.0.1") {
			return fmt.Errorf("uid %s, cluster IP %s; want a new Service at 10.43.0.1", got.UID, got.Spec.ClusterIP)
		}
		return err
	})
}

func TestServerSubsets(t *testing.T) {
	got := serverSubsets([]string{"10.0.0.2:6443", "10.0.0.1:6443", "10.0.0.1:6443", "[fd00::1]:6443", "0.0.0.0:6443",
		"169.254.0.1:6443", "10.0.0.3:0", "10.0.0.4", "host:6443"})
	want := []corev1.EndpointSubset{apiSubset(6443, "10.0.0.1", "10.0.0.2", "fd00::1")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("serverSubsets (-want +got):\n%s", diff)
	}
	if got := serverSubsets([]string{"127.0.0.1:6443"}); got != nil {
		t.Errorf("serverSubsets(loopback only) = %v, want none", got)
	}
}
