package apiserver

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServiceLeavesExternalName changes an ExternalName service to
// NodePort and back: it gets a cluster IP and a node port, then gives the
// IP back.
func TestServiceLeavesExternalName(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	svcs := ts.client.CoreV1().Services("default")
	svc, err := svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.ExternalName = ""
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update to NodePort: %v", err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix("10.43.0.0/24").Contains(ip) || len(svc.Spec.ClusterIPs) != 1 {
		t.Fatalf("NodePort service from ExternalName: clusterIP %q, clusterIPs %v", svc.Spec.ClusterIP, svc.Spec.ClusterIPs)
	}
	if svc.Spec.Ports[0].NodePort == 0 {
		t.Errorf("no node port allocated: %+v", svc.Spec.Ports)
	}

	svc.Spec.Type = corev1.ServiceTypeExternalName
	svc.Spec.ExternalName = "db.example.com"
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
	if svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update back to ExternalName: %v", err)
	}
	if svc.Spec.ClusterIP != "" {
		t.Errorf("ExternalName service kept clusterIP %q", svc.Spec.ClusterIP)
	}
	// The IP went back to the range: another service may ask for it.
	_, err = svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "reuse"},
		Spec:       corev1.ServiceSpec{ClusterIP: ip.String(), Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Errorf("creating a service with the released IP %s: %v", ip, err)
	}
}
