package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

func startServiceLB(e *env) *requestCounter {
	e.t.Helper()
	f := e.factory.Core().V1()
	client, counter := e.countingClient()
	c, err := NewServiceLBController(client, f.Services(), f.Nodes(), e.lg, ServiceLBOptions{})
	if err != nil {
		e.t.Fatalf("NewServiceLBController: %v", err)
	}
	e.run(func(ctx context.Context) error { return c.Run(ctx, 2) })
	return counter
}

// lbNode creates node name with the given addresses ("Type=IP"), Ready
// unless ready is false.
func (e *env) lbNode(name string, ready bool, addrs ...corev1.NodeAddress) {
	e.t.Helper()
	nodes := e.client.CoreV1().Nodes()
	n, err := nodes.Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create node %q: %v", name, err)
	}
	e.setLBNodeStatus(n, ready, addrs...)
}

func (e *env) setLBNodeStatus(n *corev1.Node, ready bool, addrs ...corev1.NodeAddress) {
	e.t.Helper()
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	n.Status.Addresses = addrs
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st, LastHeartbeatTime: metav1.Now()}}
	if _, err := e.client.CoreV1().Nodes().UpdateStatus(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("node %q status: %v", n.Name, err)
	}
}

func internal(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
}

func external(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip}
}

func (e *env) lbService(name string, mutate ...func(*corev1.Service)) {
	e.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	for _, m := range mutate {
		m(svc)
	}
	if _, err := e.client.CoreV1().Services("default").Create(e.ctx, svc, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create service %q: %v", name, err)
	}
}

// ingressIPs returns the ingress IPs of service name.
func (e *env) ingressIPs(name string) []string {
	e.t.Helper()
	svc, err := e.client.CoreV1().Services("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get service %q: %v", name, err)
	}
	var out []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

// waitIngress waits until service name's ingress IPs are want.
func (e *env) waitIngress(name string, want []string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("ingress of %s = %v", name, want), func() error {
		if diff := cmp.Diff(want, e.ingressIPs(name)); diff != "" {
			return fmt.Errorf("ingress (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestServiceLB(t *testing.T) {
	e := newEnv(t)
	e.lbNode("n1", true, internal("172.31.250.11"))
	e.lbNode("n2", true, internal("10.0.0.2"), external("203.0.113.2"))
	e.lbNode("sick", false, internal("172.31.250.13"))
	e.lbNode("excluded", true, internal("172.31.250.14"))
	ex := e.getNode("excluded")
	ex.Labels = map[string]string{excludeFromLBLabel: ""}
	if _, err := e.client.CoreV1().Nodes().Update(e.ctx, ex, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.lbService("web")
	e.lbService("foreign", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("example.com/other") })
	e.lbService("classed", func(s *corev1.Service) {
		s.Spec.LoadBalancerClass = ptr(LoadBalancerClass)
		s.Spec.Ports[0].Port = 8080 // load balancers of one class cannot share a port
	})
	e.createService("plain", map[string]string{"app": "plain"}, corev1.ServicePort{Port: 80})
	counter := startServiceLB(e)

	// Ready nodes only; ExternalIP before InternalIP; sorted.
	both := []string{"172.31.250.11", "203.0.113.2"}
	e.waitIngress("web", both)
	e.waitIngress("classed", both)
	svc, _ := e.client.CoreV1().Services("default").Get(e.ctx, "web", metav1.GetOptions{})
	if m := svc.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
		t.Errorf("ingress ipMode = %v, want VIP", m)
	}

	// A node becoming Ready joins, one going away leaves.
	e.setLBNodeStatus(e.getNode("sick"), true, internal("172.31.250.13"))
	e.waitIngress("web", []string{"172.31.250.11", "172.31.250.13", "203.0.113.2"})
	e.setLBNodeStatus(e.getNode("n1"), false, internal("172.31.250.11"))
	e.waitIngress("web", []string{"172.31.250.13", "203.0.113.2"})
	if err := e.client.CoreV1().Nodes().Delete(e.ctx, "sick", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitIngress("web", []string{"203.0.113.2"})
	e.setLBNodeStatus(e.getNode("n1"), true, internal("172.31.250.11"))
	e.waitIngress("web", both)

	// Changing the type away from LoadBalancer removes the ingress.
	web, _ := e.client.CoreV1().Services("default").Get(e.ctx, "web", metav1.GetOptions{})
	web.Spec.Type = corev1.ServiceTypeClusterIP
	for i := range web.Spec.Ports {
		web.Spec.Ports[i].NodePort = 0
	}
	web.Spec.ExternalTrafficPolicy, web.Spec.AllocateLoadBalancerNodePorts = "", nil
	if _, err := e.client.CoreV1().Services("default").Update(e.ctx, web, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("web to ClusterIP: %v", err)
	}
	e.waitIngress("web", nil)

	// Heartbeats alone write nothing; the foreign and plain services are
	// never written.
	writes := func() int {
		n := 0
		for _, s := range []string{"web", "classed", "foreign", "plain"} {
			n += counter.count("PUT /api/v1/namespaces/default/services/" + s + "/status")
		}
		return n
	}
	before := writes()
	for range 3 {
		n := e.getNode("n2")
		n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now().Add(time.Second))
		if _, err := e.client.CoreV1().Nodes().UpdateStatus(e.ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.lbService("last", func(s *corev1.Service) { s.Spec.Ports[0].Port = 8081 }) // processed after the heartbeats: a barrier
	e.waitIngress("last", both)
	if got := writes(); got != before {
		t.Errorf("heartbeats caused %d status writes, want 0", got-before)
	}
	for _, s := range []string{"foreign", "plain"} {
		if got := e.ingressIPs(s); len(got) != 0 || counter.count("PUT /api/v1/namespaces/default/services/"+s+"/status") != 0 {
			t.Errorf("service %s of another class got ingress %v", s, got)
		}
	}
}

func TestNodeIngress(t *testing.T) {
	ready := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		node corev1.Node
		want string
	}{
		{"internal", corev1.Node{Status: corev1.NodeStatus{Conditions: ready, Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: "n1"}, internal("10.0.0.1")}}}, "10.0.0.1"},
		{"external first", corev1.Node{Status: corev1.NodeStatus{Conditions: ready, Addresses: []corev1.NodeAddress{
			internal("10.0.0.1"), external("203.0.113.1")}}}, "203.0.113.1"},
		{"not ready", corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{internal("10.0.0.1")}}}, "invalid IP"},
		{"being deleted", corev1.Node{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now},
			Status: corev1.NodeStatus{Conditions: ready, Addresses: []corev1.NodeAddress{internal("10.0.0.1")}}}, "invalid IP"},
		{"no address", corev1.Node{Status: corev1.NodeStatus{Conditions: ready}}, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeIngress(&tc.node).String(); got != tc.want {
				t.Errorf("nodeIngress = %s, want %s", got, tc.want)
			}
		})
	}
}

// The ingress addresses are the nodes' own, so two load balancers cannot
// share a port: the older keeps it and the other waits without ingress
// until it is free, as a k3s servicelb pod waits for its host port.
func TestServiceLBPortTaken(t *testing.T) {
	e := newEnv(t)
	e.lbNode("n1", true, internal("172.31.250.11"))
	https := func(s *corev1.Service) { s.Spec.Ports = []corev1.ServicePort{{Name: "https", Port: 443}} }
	e.lbService("lb-a")
	e.lbService("lb-b", func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	})
	e.lbService("lb-c", https)
	// Port 53 over UDP is free: lb-b, which holds nothing, does not block it.
	e.lbService("lb-d", func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}
	})
	e.lbService("lb-e", https)
	startServiceLB(e)

	node := []string{"172.31.250.11"}
	e.waitIngress("lb-a", node)
	e.waitIngress("lb-c", node)
	e.waitIngress("lb-d", node)
	for _, name := range []string{"lb-b", "lb-e"} {
		if got := e.ingressIPs(name); len(got) != 0 {
			t.Errorf("service %s shares a port with an older load balancer, got ingress %v", name, got)
		}
	}

	// lb-a going away frees port 80, but lb-b's port 53 is lb-d's now.
	if err := e.client.CoreV1().Services("default").Delete(e.ctx, "lb-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The controller may write lb-d's status meanwhile: retry on conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lbD, err := e.client.CoreV1().Services("default").Get(e.ctx, "lb-d", metav1.GetOptions{})
		if err != nil {
			return err
		}
		lbD.Spec.Ports[0].Port = 5353
		_, err = e.client.CoreV1().Services("default").Update(e.ctx, lbD, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.waitIngress("lb-b", node)
	e.waitIngress("lb-d", node)
	if got := e.ingressIPs("lb-e"); len(got) != 0 {
		t.Errorf("lb-e got ingress %v while lb-c holds its port", got)
	}
}
