package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func startEndpointSlices(e *env, opts EndpointSliceOptions) {
	e.t.Helper()
	f := e.factory.Core().V1()
	c, err := NewEndpointSliceController(e.client, f.Services(), f.Pods(), f.Endpoints(), f.Nodes(),
		e.factory.Discovery().V1().EndpointSlices(), e.lg, opts)
	if err != nil {
		e.t.Fatalf("NewEndpointSliceController: %v", err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })
}

// sliceView is what the tests pin down of a slice: everything but its
// name and bookkeeping metadata.
type sliceView struct {
	ManagedBy   string
	Owner       string // Kind/name
	AddressType discoveryv1.AddressType
	Ports       []discoveryv1.EndpointPort
	Endpoints   []discoveryv1.Endpoint
}

// waitSlices waits until the slices of Service svc are want, in the
// order of their first address.
func (e *env) waitSlices(svc string, want []sliceView) {
	e.t.Helper()
	e.eventually("slices of "+svc, func() error {
		list, err := e.client.DiscoveryV1().EndpointSlices("default").List(e.ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err != nil {
			return err
		}
		var got []sliceView
		for _, s := range list.Items {
			if !strings.HasPrefix(s.Name, svc+"-") {
				return fmt.Errorf("slice name %q, want prefix %q", s.Name, svc+"-")
			}
			v := sliceView{ManagedBy: s.Labels[discoveryv1.LabelManagedBy], AddressType: s.AddressType, Ports: s.Ports, Endpoints: s.Endpoints}
			for _, o := range s.OwnerReferences {
				v.Owner = o.Kind + "/" + o.Name
			}
			got = append(got, v)
		}
		slices.SortFunc(got, func(a, b sliceView) int { return strings.Compare(firstAddress(a), firstAddress(b)) })
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("slices (-want +got):\n%s", diff)
		}
		return nil
	})
}

func firstAddress(v sliceView) string {
	if len(v.Endpoints) == 0 {
		return ""
	}
	return v.Endpoints[0].Addresses[0]
}

// podEP is the slice endpoint of pod on node-1 in zone-a.
func podEP(ip, pod string, uid types.UID, ready, serving, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod, UID: uid},
		NodeName:   ptr("node-1"),
		Zone:       ptr("zone-a"),
	}
}

func slicePort(name string, port int32, appProtocol *string) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: ptr(corev1.ProtocolTCP), AppProtocol: appProtocol}
}

func (e *env) createZonedNode(name string, lbls map[string]string) {
	e.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
	if _, err := e.client.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node: %v", err)
	}
}

func TestEndpointSlices(t *testing.T) {
	e := newEnv(t)
	e.createZonedNode("node-1", map[string]string{corev1.LabelTopologyZone: "zone-a"})
	startEndpointSlices(e, EndpointSliceOptions{})
	sel := map[string]string{"app": "web"}
	onNode := func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }
	a := e.createPod("a", sel, onNode)
	c := e.createPod("c", sel, onNode)
	e.setPodStatus("a", corev1.PodRunning, "10.42.0.10", true, 0)
	e.setPodStatus("c", corev1.PodRunning, "10.42.0.12", false, 0)
	e.createService("web", sel, corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: ptr("http")})

	ports := []discoveryv1.EndpointPort{slicePort("http", 8080, ptr("http"))}
	view := func(eps ...discoveryv1.Endpoint) []sliceView {
		return []sliceView{{ManagedBy: SliceManagerPods, Owner: "Service/web", AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps}}
	}
	e.waitSlices("web", view(podEP("10.42.0.10", "a", a.UID, true, true, false), podEP("10.42.0.12", "c", c.UID, false, false, false)))

	// c becomes ready; a is deleted and lingers, terminating, on its node.
	e.setPodStatus("c", corev1.PodRunning, "10.42.0.12", true, 0)
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSlices("web", view(podEP("10.42.0.10", "a", a.UID, false, true, true), podEP("10.42.0.12", "c", c.UID, true, true, false)))

	// c becomes unready again.
	e.setPodStatus("c", corev1.PodRunning, "10.42.0.12", false, 0)
	e.waitSlices("web", view(podEP("10.42.0.10", "a", a.UID, false, true, true), podEP("10.42.0.12", "c", c.UID, false, false, false)))

	// A slice deleted by hand comes back.
	list, err := e.client.DiscoveryV1().EndpointSlices("default").List(e.ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list slices = %v, %v; want one", list, err)
	}
	if err := e.client.DiscoveryV1().EndpointSlices("default").Delete(e.ctx, list.Items[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSlices("web", view(podEP("10.42.0.10", "a", a.UID, false, true, true), podEP("10.42.0.12", "c", c.UID, false, false, false)))

	if err := e.client.CoreV1().Services("default").Delete(e.ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSlices("web", nil)
}

// TestEndpointSlicesSplit checks the placeholder slice of a
// Service that selects nothing, and the limit of endpoints per slice.
func TestEndpointSlicesSplit(t *testing.T) {
	e := newEnv(t)
	e.createZonedNode("node-1", map[string]string{corev1.LabelTopologyZone: "zone-a"})
	startEndpointSlices(e, EndpointSliceOptions{MaxEndpointsPerSlice: 2})
	sel := map[string]string{"app": "web"}
	e.createService("web", sel, corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	empty := sliceView{ManagedBy: SliceManagerPods, Owner: "Service/web", AddressType: discoveryv1.AddressTypeIPv4}
	e.waitSlices("web", []sliceView{empty})

	var eps []discoveryv1.Endpoint
	for i, name := range []string{"a", "b", "c"} {
		p := e.createPod(name, sel, func(p *corev1.Pod) { p.Spec.NodeName = "node-1" })
		ip := fmt.Sprintf("10.42.0.%d", 10+i)
		e.setPodStatus(name, corev1.PodRunning, ip, true, 0)
		eps = append(eps, podEP(ip, name, p.UID, true, true, false))
	}
	ports := []discoveryv1.EndpointPort{slicePort("http", 8080, nil)}
	view := func(eps ...discoveryv1.Endpoint) sliceView {
		return sliceView{ManagedBy: SliceManagerPods, Owner: "Service/web", AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps}
	}
	e.waitSlices("web", []sliceView{view(eps[0], eps[1]), view(eps[2])})
}

func TestEndpointSliceMirroring(t *testing.T) {
	e := newEnv(t)
	startEndpointSlices(e, EndpointSliceOptions{})
	e.createService("ext", nil, corev1.ServicePort{Name: "db", Port: 5432})
	epAPI := e.client.CoreV1().Endpoints("default")
	ep, err := epAPI.Create(e.ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default", Labels: map[string]string{"team": "db"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "192.168.1.10"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.168.1.11", Hostname: "db-1"}},
			Ports:             []corev1.EndpointPort{{Name: "db", Port: 5432, AppProtocol: ptr("postgresql")}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := func(ip string, r bool, host *string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &r}, Hostname: host}
	}
	view := func(eps ...discoveryv1.Endpoint) []sliceView {
		return []sliceView{{ManagedBy: SliceManagerMirror, Owner: "Endpoints/ext", AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{slicePort("db", 5432, ptr("postgresql"))}, Endpoints: eps}}
	}
	e.waitSlices("ext", view(ready("192.168.1.10", true, nil), ready("192.168.1.11", false, ptr("db-1"))))
	list, err := e.client.DiscoveryV1().EndpointSlices("default").List(e.ctx, metav1.ListOptions{LabelSelector: "team=db"})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("slices with the Endpoints' labels = %v, %v; want one", list, err)
	}

	// The user edits the Endpoints: the slice follows.
	ep.Subsets[0].NotReadyAddresses = nil
	if ep, err = epAPI.Update(e.ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSlices("ext", view(ready("192.168.1.10", true, nil)))

	// Marked to be skipped, it is not mirrored.
	ep.Labels[labelSkipMirror] = "true"
	if _, err = epAPI.Update(e.ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSlices("ext", nil)
}

// TestEndpointSlicesExternalName checks that an ExternalName Service,
// which names a DNS name, gets no slices even with a selector.
func TestEndpointSlicesExternalName(t *testing.T) {
	e := newEnv(t)
	startEndpointSlices(e, EndpointSliceOptions{})
	sel := map[string]string{"app": "web"}
	e.createPod("a", sel, func(p *corev1.Pod) { p.Spec.NodeName = "node-1" })
	e.setPodStatus("a", corev1.PodRunning, "10.42.0.10", true, 0)
	e.createService("web", sel, corev1.ServicePort{Name: "http", Port: 80})
	e.waitSlices("web", []sliceView{{ManagedBy: SliceManagerPods, Owner: "Service/web", AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{slicePort("http", 80, nil)}, Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.42.0.10"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "a", UID: podUID(e, "a")},
			NodeName:   ptr("node-1"),
		}}}})
	svcs := e.client.CoreV1().Services("default")
	svc, err := svcs.Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type, svc.Spec.ExternalName = corev1.ServiceTypeExternalName, "web.example.com"
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs, svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = "", nil, nil, nil
	if _, err := svcs.Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSlices("web", nil)
}

func podUID(e *env, name string) types.UID {
	e.t.Helper()
	p, err := e.client.CoreV1().Pods("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.UID
}
