package servicenet

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/network"
)

func testServices() ([]*corev1.Service, map[svcKey][]sliceEndpoint) {
	svcs := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.43.0.20",
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}, Spec: corev1.ServiceSpec{
			ClusterIP: "None",
			Ports:     []corev1.ServicePort{{Name: "pg", Protocol: corev1.ProtocolTCP, Port: 5432}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plain"}, Spec: corev1.ServiceSpec{
			ClusterIP: "10.43.0.21",
			Ports:     []corev1.ServicePort{{Protocol: corev1.ProtocolUDP, Port: 53, NodePort: 31000}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "lb"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.22",
			SessionAffinity:       corev1.ServiceAffinityClientIP,
			SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(int32(30))}},
			Ports:                 []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30081}},
		}, Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: "172.31.250.11"}, {IP: "fd00::1"}, {Hostname: "lb.example.com"}, {IP: "::ffff:172.31.250.12"},
			// A load balancer in Proxy mode delivers to the nodes itself: its
			// address is not the proxy's to serve.
			{IP: "198.51.100.7", IPMode: new(corev1.LoadBalancerIPModeProxy)}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "sticky"}, Spec: corev1.ServiceSpec{
			ClusterIP: "10.43.0.23", SessionAffinity: corev1.ServiceAffinityClientIP,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}},
		}, Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "172.31.250.11"}}}}},
	}
	eps := mergedSlices(
		testSlice("default", "web-a", "web", testPorts("http", 8080), testEndpoint("10.42.0.5", "", true), testEndpoint("10.42.1.9", "", false)),
		testSlice("default", "web-b", "web", testPorts("http", 8080), testEndpoint("10.42.1.7", "", true)),
		testSlice("default", "db-a", "db", testPorts("pg", 5432), testEndpoint("10.42.1.3", "", true), testEndpoint("10.42.0.3", "", true)),
	)
	return svcs, eps
}

func TestProxyConversion(t *testing.T) {
	svcs, eps := testServices()
	wantS := []network.Service{
		{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.43.0.20"),
			Ports: []network.ServicePort{{Name: "http", Protocol: "tcp", Port: 80, NodePort: 30080}}},
		{Namespace: "default", Name: "plain", ClusterIP: netip.MustParseAddr("10.43.0.21"),
			Ports: []network.ServicePort{{Protocol: "udp", Port: 53}}},
		{Namespace: "default", Name: "lb", ClusterIP: netip.MustParseAddr("10.43.0.22"),
			Ports:           []network.ServicePort{{Name: "http", Protocol: "tcp", Port: 80, NodePort: 30081}},
			ExternalIPs:     []netip.Addr{netip.MustParseAddr("172.31.250.11"), netip.MustParseAddr("172.31.250.12")},
			AffinityTimeout: 30 * time.Second},
		// Not a LoadBalancer: its ingress is ignored. Affinity without a
		// config: Kubernetes' default timeout.
		{Namespace: "default", Name: "sticky", ClusterIP: netip.MustParseAddr("10.43.0.23"),
			Ports: []network.ServicePort{{Protocol: "tcp", Port: 80}}, AffinityTimeout: 3 * time.Hour},
	}
	if diff := cmp.Diff(wantS, proxyServices(svcs), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("proxyServices (-want +got):\n%s", diff)
	}
	web := proxyEndpointsOf(svcKey{"default", "web"}, eps[svcKey{"default", "web"}])
	want := []netip.AddrPort{netip.MustParseAddrPort("10.42.0.5:8080"), netip.MustParseAddrPort("10.42.1.7:8080")}
	if !cmp.Equal(web.Ports["http"], want, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })) {
		t.Errorf("proxyEndpointsOf web http = %v, want %v", web.Ports["http"], want)
	}
	got := proxyEndpointsFromSlices(eps)

	dnsIP, local := netip.MustParseAddr("10.43.0.10"), netip.MustParseAddr("10.42.0.1")
	s2, e2 := withClusterDNS(append(proxyServices(svcs), network.Service{Namespace: "kube-system", Name: "kube-dns", ClusterIP: dnsIP}), got, dnsIP, local)
	var found int
	for _, s := range s2 {
		if s.ClusterIP == dnsIP {
			found++
		}
	}
	last := e2[len(e2)-1]
	if found != 1 || last.Ports["dns"][0] != netip.AddrPortFrom(local, 53) {
		t.Errorf("withClusterDNS: %d services at %s, endpoints %v; want one, to %s:53", found, dnsIP, last.Ports, local)
	}
}

func TestNodeRoutes(t *testing.T) {
	node := func(name, cidr, ip string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}}}
	}
	nodes := []*corev1.Node{node("a", "10.42.0.0/24", "192.0.2.1"), node("b", "10.42.1.0/24", "192.0.2.2"), node("c", "", "192.0.2.3")}
	got := nodeRoutes("a", nodes, slog.New(slog.DiscardHandler))
	want := []network.Route{{PodCIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("192.0.2.2")}}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("nodeRoutes = %v, want %v", got, want)
	}

	// The proxier serves NodePorts of b and c (a podCIDR is not needed)
	// to a and its pods; a node without an InternalIP is left out.
	nodes = append(nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "d"}})
	ips := remoteNodeIPs("a", nodes)
	wantIPs := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")}
	if !slices.Equal(ips, wantIPs) {
		t.Errorf("remoteNodeIPs = %v, want %v", ips, wantIPs)
	}
}

// fakeWriter records a DNS reply.
type fakeWriter struct {
	dns.ResponseWriter
	msg *dns.Msg
}

func (w *fakeWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *fakeWriter) RemoteAddr() net.Addr      { return &net.UDPAddr{} }

func TestDNSAnswers(t *testing.T) {
	svcs, eps := testServices()
	s := newDNSServer(netip.MustParseAddr("10.42.0.1"), "", slog.New(slog.DiscardHandler))
	s.setRecords(newRecords(svcs, eps))
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string // answer values
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.43.0.20"}},
		{"WEB.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.43.0.20"}},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.42.0.3", "10.42.1.3"}},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"80 web.default.svc.cluster.local."}},
		{"_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"5432 10-42-0-3.db.default.svc.cluster.local.", "5432 10-42-1-3.db.default.svc.cluster.local."}},
		{"10-42-1-3.db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.42.1.3"}},
		{"10-1-2-3.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.1.2.3"}},
		{"nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"web.other.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"_nope._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, nil},
		{"web.default.svc.cluster.local.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name+dns.TypeToString[tc.qtype], func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion(tc.name, tc.qtype)
			w := &fakeWriter{}
			s.ServeDNS(w, req)
			if w.msg == nil {
				t.Fatal("no reply")
			}
			var got []string
			for _, rr := range w.msg.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					got = append(got, rr.A.String())
				case *dns.SRV:
					got = append(got, fmt.Sprint(rr.Port)+" "+rr.Target)
				}
			}
			if w.msg.Rcode != tc.rcode || !cmp.Equal(got, tc.want) {
				t.Errorf("%s %s = %s %v, want %s %v", tc.name, dns.TypeToString[tc.qtype],
					dns.RcodeToString[w.msg.Rcode], got, dns.RcodeToString[tc.rcode], tc.want)
			}
		})
	}
}

func TestDecodeViewCached(t *testing.T) {
	svcKey := Key{Kind: KindService, Namespace: "default", Name: "web"}
	epKey := Key{Kind: KindEndpointSlice, Namespace: "default", Name: "web-abcde"}
	nodeKey := Key{Kind: KindNode, Name: "n1"}
	badKey := Key{Kind: KindService, Namespace: "default", Name: "bad"}
	objs := Objects{
		svcKey:  []byte(`{"metadata":{"name":"web","namespace":"default"},"spec":{"clusterIP":"10.43.0.20"}}`),
		epKey:   []byte(`{"metadata":{"name":"web-abcde","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4"}`),
		nodeKey: []byte(`{"metadata":{"name":"n1"}}`),
		badKey:  []byte(`{`),
	}
	lg := slog.New(slog.DiscardHandler)
	v1, cache := decodeViewCached(objs, nil, lg)
	if len(v1.services) != 1 || len(v1.slices) != 1 || len(v1.nodes) != 1 || v1.services[0].Spec.ClusterIP != "10.43.0.20" {
		t.Fatalf("first view: %d services, %d slices, %d nodes, want 1 of each", len(v1.services), len(v1.slices), len(v1.nodes))
	}
	// The service is unchanged (the same bytes, or equal ones), the
	// slice changed, the node went.
	next := Objects{
		svcKey: objs[svcKey],
		epKey: []byte(`{"metadata":{"name":"web-abcde","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4",` +
			`"endpoints":[{"addresses":["10.42.0.5"]}],"ports":[{"port":8080}]}`),
	}
	v2, cache := decodeViewCached(next, cache, lg)
	if v2.services[0] != v1.services[0] {
		t.Errorf("unchanged service decoded again")
	}
	eps := proxyEndpointsFromSlices(mergeSlices(v2.slices))
	if len(v2.proxyServices) != 1 || v2.proxyServices[0].ClusterIP != netip.MustParseAddr("10.43.0.20") ||
		len(eps) != 1 || eps[0].Name != "web" || len(eps[0].Ports[""]) != 1 {
		t.Errorf("view for the proxier: services %+v, endpoints %+v", v2.proxyServices, eps)
	}
	if len(v2.slices[0].endpoints) != 1 || len(v1.slices[0].endpoints) != 0 {
		t.Errorf("changed slice not decoded again: %+v", v2.slices[0])
	}
	if len(v2.nodes) != 0 || len(cache) != 2 {
		t.Errorf("deleted node: %d nodes in the view, %d objects cached; want 0 and 2", len(v2.nodes), len(cache))
	}
	next[svcKey] = append([]byte(nil), objs[svcKey]...)
	if v3, _ := decodeViewCached(next, cache, lg); v3.services[0] != v1.services[0] {
		t.Errorf("service with equal bytes in a new slice decoded again")
	}
}

// BenchmarkNetView measures what a sync of the agent does before the
// proxier at 5,000 services × 3 endpoints after one EndpointSlice change:
// decoding the view (cached, and from scratch as the baseline), merging
// the slices and converting it all for the proxier.
func BenchmarkNetView(b *testing.B) {
	objs := Objects{}
	for i := range 5000 {
		name := fmt.Sprintf("svc-%05d", i)
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name}, Spec: corev1.ServiceSpec{
			ClusterIP: fmt.Sprintf("10.43.%d.%d", i>>8, i&255), Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}}
		var endpoints []discoveryv1.Endpoint
		for j := range 3 {
			k := i*3 + j
			endpoints = append(endpoints, testEndpoint(fmt.Sprintf("10.42.%d.%d", k>>8, k&255), "", true))
		}
		ep := testSlice("bench", name+"-abcde", name, testPorts("http", 8080), endpoints...)
		sd, _ := json.Marshal(svc)
		ed, _ := json.Marshal(ep)
		objs[Key{Kind: KindService, Namespace: "bench", Name: name}] = sd
		objs[Key{Kind: KindEndpointSlice, Namespace: "bench", Name: name + "-abcde"}] = ed
	}
	lg := slog.New(slog.DiscardHandler)
	changed := Key{Kind: KindEndpointSlice, Namespace: "bench", Name: "svc-00000-abcde"}
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			_, cache := decodeViewCached(objs, nil, lg)
			i := 0
			for b.Loop() {
				i++
				next := maps.Clone(objs)
				next[changed] = fmt.Appendf(nil, `{"metadata":{"namespace":"bench","name":"svc-00000-abcde","labels":{"kubernetes.io/service-name":"svc-00000"}},`+
					`"addressType":"IPv4","endpoints":[{"addresses":["10.41.0.%d"]}],"ports":[{"name":"http","port":8080}]}`, i%250)
				if !cached {
					cache = nil
				}
				var v view
				v, cache = decodeViewCached(next, cache, lg)
				if len(v.proxyServices) != 5000 || len(proxyEndpointsFromSlices(mergeSlices(v.slices))) != 5000 {
					b.Fatal("wrong view")
				}
			}
		})
	}
}
