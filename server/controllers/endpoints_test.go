package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func startEndpoints(e *env) *requestCounter {
	e.t.Helper()
	f := e.factory.Core().V1()
	client, counter := e.countingClient()
	c, err := NewEndpointsController(client, f.Services(), f.Pods(), f.Endpoints(), e.lg, EndpointsOptions{})
	if err != nil {
		e.t.Fatalf("NewEndpointsController: %v", err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })
	return counter
}

func (e *env) createService(name string, sel map[string]string, ports ...corev1.ServicePort) {
	e.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"svc": name}},
		Spec:       corev1.ServiceSpec{Selector: sel, Ports: ports},
	}
	if _, err := e.client.CoreV1().Services("default").Create(e.ctx, svc, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create service %q: %v", name, err)
	}
}

// waitSubsets waits until the Endpoints name has subsets want.
func (e *env) waitSubsets(name string, want []corev1.EndpointSubset) {
	e.t.Helper()
	e.eventually("endpoints "+name, func() error {
		ep, err := e.client.CoreV1().Endpoints("default").Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, ep.Subsets); diff != "" {
			return fmt.Errorf("subsets (-want +got):\n%s", diff)
		}
		return nil
	})
}

func addr(ip, pod string, uid string) corev1.EndpointAddress {
	return corev1.EndpointAddress{
		IP:        ip,
		NodeName:  ptr("node-1"),
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod, UID: types.UID(uid)},
	}
}

func TestEndpoints(t *testing.T) {
	e := newEnv(t)
	startEndpoints(e)
	sel := map[string]string{"app": "web"}
	onNode := func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }
	otherPort := func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9090 }
	a := e.createPod("a", sel, onNode)
	b := e.createPod("b", sel, onNode, otherPort)
	c := e.createPod("c", sel, onNode)
	e.createPod("no-ip", sel, onNode)
	e.createPod("other", map[string]string{"app": "db"}, onNode)
	e.setPodStatus("a", corev1.PodRunning, "10.42.0.10", true, 0)
	e.setPodStatus("b", corev1.PodRunning, "10.42.0.11", true, 0)
	e.setPodStatus("c", corev1.PodRunning, "10.42.0.12", false, 0)
	e.setPodStatus("other", corev1.PodRunning, "10.42.0.13", true, 0)

	e.createService("web", sel,
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		corev1.ServicePort{Name: "metrics", Port: 9100, TargetPort: intstr.FromInt32(9100)},
	)
	ports := func(http int32) []corev1.EndpointPort {
		return []corev1.EndpointPort{
			{Name: "http", Port: http, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP},
		}
	}
	e.waitSubsets("web", []corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{addr("10.42.0.10", "a", string(a.UID))}, NotReadyAddresses: []corev1.EndpointAddress{addr("10.42.0.12", "c", string(c.UID))}, Ports: ports(8080)},
		{Addresses: []corev1.EndpointAddress{addr("10.42.0.11", "b", string(b.UID))}, Ports: ports(9090)},
	})

	// c turns ready; b is deleted (it lingers, terminating, on its node).
	e.setPodStatus("c", corev1.PodRunning, "10.42.0.12", true, 0)
	if err := e.client.CoreV1().Pods("default").Delete(e.ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSubsets("web", []corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{addr("10.42.0.10", "a", string(a.UID)), addr("10.42.0.12", "c", string(c.UID))}, Ports: ports(8080)},
	})
	ep, err := e.client.CoreV1().Endpoints("default").Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Labels["svc"] != "web" {
		t.Errorf("endpoints labels = %v, want the service's", ep.Labels)
	}

	if err := e.client.CoreV1().Services("default").Delete(e.ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("endpoints deleted", func() error {
		_, err := e.client.CoreV1().Endpoints("default").Get(e.ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get endpoints = %v, want NotFound", err)
	})
}

// TestEndpointsWriteOnlyChanges checks that a sync with nothing new does
// not write the Endpoints again.
func TestEndpointsWriteOnlyChanges(t *testing.T) {
	e := newEnv(t)
	writes := startEndpoints(e)
	sel := map[string]string{"app": "web"}
	e.createPod("a", sel)
	e.setPodStatus("a", corev1.PodRunning, "10.42.0.10", true, 0)
	e.createService("web", sel, corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	e.eventually("endpoints", func() error {
		ep, err := e.client.CoreV1().Endpoints("default").Get(e.ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(ep.Subsets) != 1 {
			return fmt.Errorf("subsets = %v", ep.Subsets)
		}
		return nil
	})
	// An unrelated change to the pod and the service makes the controller
	// sync again.
	pods := e.client.CoreV1().Pods("default")
	pod, err := pods.Get(e.ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Annotations = map[string]string{"touched": "yes"}
	if _, err := pods.Update(e.ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.createPod("no-ip", sel)
	time.Sleep(300 * time.Millisecond)
	if n := writes.count("PUT /api/v1/namespaces/default/endpoints/web"); n != 0 {
		t.Errorf("endpoints updated %d times with nothing changed", n)
	}
}

// TestEndpointSubsetsHostname checks that a pod's hostname appears in the
// Endpoints of the service its subdomain names, and only there.
func TestEndpointSubsetsHostname(t *testing.T) {
	pod := func(name, ip, hostname, subdomain string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec:       corev1.PodSpec{Hostname: hostname, Subdomain: subdomain},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	pods := []*corev1.Pod{
		pod("a", "10.42.0.10", "web-0", "web"),
		pod("b", "10.42.0.11", "web-1", "other"),
		pod("c", "10.42.0.12", "", "web"),
	}
	for _, tc := range []struct {
		svc  string
		want []string
	}{
		{"web", []string{"web-0", "", ""}},
		{"other", []string{"", "web-1", ""}},
	} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tc.svc}, Spec: corev1.ServiceSpec{ClusterIP: "None"}}
		subsets := endpointSubsets(svc, pods)
		if len(subsets) != 1 || len(subsets[0].Addresses) != 3 {
			t.Fatalf("%s: subsets = %+v, want one with 3 addresses", tc.svc, subsets)
		}
		var got []string
		for _, a := range subsets[0].Addresses {
			got = append(got, a.Hostname)
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("%s: hostnames = %q, want %q", tc.svc, got, tc.want)
		}
	}
}
