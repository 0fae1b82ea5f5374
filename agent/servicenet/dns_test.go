package servicenet

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// dnsFixture is a cluster with the kinds of services DNS names: the
// kubernetes service, a dual-stack one, a headless one whose pods have
// hostnames, one whose pods have none, an empty headless one and
// ExternalName services.
func dnsFixture() ([]*corev1.Service, map[svcKey][]sliceEndpoint) {
	svc := func(ns, name string, spec corev1.ServiceSpec) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	}
	https := []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443}}
	svcs := []*corev1.Service{
		svc("default", "kubernetes", corev1.ServiceSpec{ClusterIP: "10.43.0.1", ClusterIPs: []string{"10.43.0.1"}, Ports: https}),
		svc("apps", "dual", corev1.ServiceSpec{ClusterIP: "10.43.0.30", ClusterIPs: []string{"10.43.0.30", "fd43::30"},
			Ports: []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}, {Protocol: corev1.ProtocolTCP, Port: 80}}}),
		svc("apps", "pets", corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}),
		svc("apps", "anon", corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}),
		svc("apps", "empty", corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}),
		svc("apps", "ext", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.Example.com"}),
		svc("apps", "alias", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "dual.apps.svc.cluster.local"}),
	}
	https6443 := []discoveryv1.EndpointPort{{Name: new("https"), Port: new(int32(6443)), Protocol: new(corev1.ProtocolTCP)}}
	http8080 := []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080)), Protocol: new(corev1.ProtocolTCP)}}
	eps := mergedSlices(
		testSlice("default", "kubernetes", "kubernetes", https6443, testEndpoint("192.0.2.10", "", true)),
		// The pets' endpoints are spread over two slices.
		testSlice("apps", "pets-a", "pets", http8080, testEndpoint("10.42.0.7", "pet-1", true)),
		testSlice("apps", "pets-b", "pets", http8080, testEndpoint("10.42.1.5", "Pet-0", true), testEndpoint("10.42.1.9", "pet-2", false)),
		testSlice("apps", "anon-v4", "anon", http8080, testEndpoint("10.42.2.4", "", true)),
		testSlice("apps", "anon-v6", "anon", http8080, testEndpoint("fd42::2:4", "", true)),
		testSlice("apps", "empty-a", "empty", nil, testEndpoint("10.42.3.3", "", false)),
	)
	return svcs, eps
}

// upstreamFake answers every question with one A record, 192.0.2.99,
// and records the names asked.
type upstreamFake struct{ asked []string }

func (u *upstreamFake) exchange(req *dns.Msg, _ bool) *dns.Msg {
	q := req.Question[0]
	u.asked = append(u.asked, dns.TypeToString[q.Qtype]+" "+q.Name)
	m := new(dns.Msg)
	m.SetReply(req)
	if q.Qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: hdr(q.Name, dns.TypeA), A: net.IPv4(192, 0, 2, 99)}}
	}
	if q.Qtype == dns.TypePTR {
		m.Answer = []dns.RR{&dns.PTR{Hdr: hdr(q.Name, dns.TypePTR), Ptr: "host.example.net."}}
	}
	return m
}

func newTestDNS() (*dnsServer, *upstreamFake) {
	s := newDNSServer(netip.MustParseAddr("10.42.0.1"), "", slog.New(slog.DiscardHandler))
	s.setRecords(newRecords(dnsFixture()))
	up := &upstreamFake{}
	s.exchange = up.exchange
	return s, up
}

// query asks s one question and returns the reply's rcode, answers and
// additional records as "TYPE value" strings, and whether a reply
// without answers carries the SOA.
func query(t *testing.T, s *dnsServer, name string, qtype uint16) (rcode string, answer, extra []string, soa bool) {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	w := &fakeWriter{}
	s.ServeDNS(w, req)
	if w.msg == nil {
		t.Fatal("no reply")
	}
	for _, rr := range w.msg.Ns {
		_, soa = rr.(*dns.SOA)
	}
	return dns.RcodeToString[w.msg.Rcode], rrValues(w.msg.Answer), rrValues(w.msg.Extra), soa
}

func rrValues(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		v := dns.TypeToString[rr.Header().Rrtype] + " "
		switch rr := rr.(type) {
		case *dns.A:
			v += rr.A.String()
		case *dns.AAAA:
			v += rr.AAAA.String()
		case *dns.SRV:
			v += fmt.Sprintf("%d %s", rr.Port, rr.Target)
		case *dns.CNAME:
			v += rr.Target
		case *dns.PTR:
			v += rr.Ptr
		case *dns.TXT:
			v += rr.Txt[0]
		case *dns.SOA:
			v += rr.Ns
		}
		out = append(out, v)
	}
	return out
}

type dnsCase struct {
	name  string
	qtype uint16
	rcode string
	want  []string
}

func runDNSCases(t *testing.T, tests []dnsCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(dns.TypeToString[tc.qtype]+" "+tc.name, func(t *testing.T) {
			s, _ := newTestDNS()
			rcode, got, _, soa := query(t, s, tc.name, tc.qtype)
			if rcode != tc.rcode || !cmp.Equal(got, tc.want) {
				t.Errorf("%s %s = %s %q, want %s %q", tc.name, dns.TypeToString[tc.qtype], rcode, got, tc.rcode, tc.want)
			}
			if len(got) == 0 && !soa {
				t.Errorf("negative answer without the SOA")
			}
		})
	}
}

func TestDNSServiceRecords(t *testing.T) {
	const A, AAAA, SRV = dns.TypeA, dns.TypeAAAA, dns.TypeSRV
	runDNSCases(t, []dnsCase{
		{"kubernetes.default.svc.cluster.local.", A, "NOERROR", []string{"A 10.43.0.1"}},
		{"Kubernetes.Default.SVC.cluster.local.", A, "NOERROR", []string{"A 10.43.0.1"}},
		{"kubernetes.default.svc.cluster.local.", AAAA, "NOERROR", nil},
		{"dual.apps.svc.cluster.local.", A, "NOERROR", []string{"A 10.43.0.30"}},
		{"dual.apps.svc.cluster.local.", AAAA, "NOERROR", []string{"AAAA fd43::30"}},
		{"dual.apps.svc.cluster.local.", dns.TypeMX, "NOERROR", nil},
		// Headless: the ready endpoints; none ready is NXDOMAIN.
		{"pets.apps.svc.cluster.local.", A, "NOERROR", []string{"A 10.42.0.7", "A 10.42.1.5"}},
		{"anon.apps.svc.cluster.local.", AAAA, "NOERROR", []string{"AAAA fd42::2:4"}},
		{"empty.apps.svc.cluster.local.", A, "NXDOMAIN", nil},
		{"nope.apps.svc.cluster.local.", A, "NXDOMAIN", nil},
		{"kubernetes.apps.svc.cluster.local.", A, "NXDOMAIN", nil},
		{"x.kubernetes.default.svc.cluster.local.svc.cluster.local.", A, "NXDOMAIN", nil},
	})
}

func TestDNSHostnameRecords(t *testing.T) {
	const A, AAAA = dns.TypeA, dns.TypeAAAA
	runDNSCases(t, []dnsCase{
		{"pet-0.pets.apps.svc.cluster.local.", A, "NOERROR", []string{"A 10.42.1.5"}},
		{"PET-1.pets.apps.svc.cluster.local.", A, "NOERROR", []string{"A 10.42.0.7"}},
		{"pet-0.pets.apps.svc.cluster.local.", AAAA, "NOERROR", nil},
		// Not ready: not served.
		{"pet-2.pets.apps.svc.cluster.local.", A, "NXDOMAIN", nil},
		// An endpoint with a hostname is named by it, not its address.
		{"10-42-1-5.pets.apps.svc.cluster.local.", A, "NXDOMAIN", nil},
		{"10-42-2-4.anon.apps.svc.cluster.local.", A, "NOERROR", []string{"A 10.42.2.4"}},
		{"fd42--2-4.anon.apps.svc.cluster.local.", AAAA, "NOERROR", []string{"AAAA fd42::2:4"}},
		{"10-42-9-9.anon.apps.svc.cluster.local.", A, "NXDOMAIN", nil},
	})
}

func TestDNSSRVRecords(t *testing.T) {
	const A, SRV = dns.TypeA, dns.TypeSRV
	runDNSCases(t, []dnsCase{
		{"_https._tcp.kubernetes.default.svc.cluster.local.", SRV, "NOERROR", []string{"SRV 443 kubernetes.default.svc.cluster.local."}},
		{"_https._tcp.kubernetes.default.svc.cluster.local.", A, "NOERROR", []string{"A 10.43.0.1"}},
		{"_dns._udp.dual.apps.svc.cluster.local.", SRV, "NOERROR", []string{"SRV 53 dual.apps.svc.cluster.local."}},
		// Headless: one per ready endpoint, by hostname or dashed address.
		{"_http._tcp.pets.apps.svc.cluster.local.", SRV, "NOERROR", []string{
			"SRV 8080 pet-0.pets.apps.svc.cluster.local.", "SRV 8080 pet-1.pets.apps.svc.cluster.local."}},
		{"_http._tcp.anon.apps.svc.cluster.local.", SRV, "NOERROR", []string{
			"SRV 8080 10-42-2-4.anon.apps.svc.cluster.local.", "SRV 8080 fd42--2-4.anon.apps.svc.cluster.local."}},
		{"_http._tcp.empty.apps.svc.cluster.local.", SRV, "NXDOMAIN", nil},
		// The protocol label exists (the SRV name is under it); others do not.
		{"_tcp.kubernetes.default.svc.cluster.local.", SRV, "NOERROR", nil},
		{"_udp.kubernetes.default.svc.cluster.local.", SRV, "NXDOMAIN", nil},
		{"_https._udp.kubernetes.default.svc.cluster.local.", SRV, "NXDOMAIN", nil},
		{"_nope._tcp.kubernetes.default.svc.cluster.local.", SRV, "NXDOMAIN", nil},
		{"https.tcp.kubernetes.default.svc.cluster.local.", SRV, "NXDOMAIN", nil},
		{"_._tcp.kubernetes.default.svc.cluster.local.", SRV, "NXDOMAIN", nil},
	})
}

// TestDNSSRVAdditional checks that an SRV answer carries its targets'
// addresses.
func TestDNSSRVAdditional(t *testing.T) {
	s, _ := newTestDNS()
	_, _, extra, _ := query(t, s, "_http._tcp.pets.apps.svc.cluster.local.", dns.TypeSRV)
	want := []string{"A 10.42.1.5", "A 10.42.0.7"}
	if !cmp.Equal(extra, want) {
		t.Errorf("additional = %q, want %q", extra, want)
	}
	_, _, extra, _ = query(t, s, "_dns._udp.dual.apps.svc.cluster.local.", dns.TypeSRV)
	if want := []string{"A 10.43.0.30", "AAAA fd43::30"}; !cmp.Equal(extra, want) {
		t.Errorf("additional = %q, want %q", extra, want)
	}
}

func TestDNSPodRecords(t *testing.T) {
	const A, AAAA = dns.TypeA, dns.TypeAAAA
	runDNSCases(t, []dnsCase{
		{"10-42-0-5.apps.pod.cluster.local.", A, "NOERROR", []string{"A 10.42.0.5"}},
		// Any namespace, as CoreDNS's pods insecure mode.
		{"10-42-0-5.fresh.pod.cluster.local.", A, "NOERROR", []string{"A 10.42.0.5"}},
		{"10-42-0-5.apps.pod.cluster.local.", AAAA, "NOERROR", nil},
		{"fd42--5.apps.pod.cluster.local.", AAAA, "NOERROR", []string{"AAAA fd42::5"}},
		{"fd42-0-0-0-0-0-0-5.apps.pod.cluster.local.", AAAA, "NOERROR", []string{"AAAA fd42::5"}},
		{"fd42--5.apps.pod.cluster.local.", A, "NOERROR", nil},
		{"10-42-0-256.apps.pod.cluster.local.", A, "NXDOMAIN", nil},
		{"web.apps.pod.cluster.local.", A, "NXDOMAIN", nil},
		{"x.10-42-0-5.apps.pod.cluster.local.", A, "NXDOMAIN", nil},
	})
}

// TestDNSEmptyNames checks the names that exist without records of
// their own: NOERROR without answers, not NXDOMAIN.
func TestDNSEmptyNames(t *testing.T) {
	const A = dns.TypeA
	runDNSCases(t, []dnsCase{
		{"cluster.local.", A, "NOERROR", nil},
		{"cluster.local.", dns.TypeSOA, "NOERROR", []string{"SOA ns.dns.cluster.local."}},
		{"svc.cluster.local.", A, "NOERROR", nil},
		{"apps.svc.cluster.local.", A, "NOERROR", nil},
		{"pod.cluster.local.", A, "NOERROR", nil},
		{"apps.pod.cluster.local.", A, "NOERROR", nil},
		{"dns-version.cluster.local.", dns.TypeTXT, "NOERROR", []string{"TXT " + dnsSchemaVersion}},
		{"dns-version.cluster.local.", A, "NOERROR", nil},
		{"nowhere.svc.cluster.local.", A, "NXDOMAIN", nil},
		{"nope.cluster.local.", A, "NXDOMAIN", nil},
	})
}

func TestDNSPTRRecords(t *testing.T) {
	const PTR = dns.TypePTR
	runDNSCases(t, []dnsCase{
		{"1.0.43.10.in-addr.arpa.", PTR, "NOERROR", []string{"PTR kubernetes.default.svc.cluster.local."}},
		{"30.0.43.10.in-addr.arpa.", PTR, "NOERROR", []string{"PTR dual.apps.svc.cluster.local."}},
		{"0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.d.f.ip6.arpa.", PTR, "NOERROR",
			[]string{"PTR dual.apps.svc.cluster.local."}},
		// Endpoints of headless services, by hostname or dashed address.
		{"5.1.42.10.in-addr.arpa.", PTR, "NOERROR", []string{"PTR pet-0.pets.apps.svc.cluster.local."}},
		{"4.2.42.10.in-addr.arpa.", PTR, "NOERROR", []string{"PTR 10-42-2-4.anon.apps.svc.cluster.local."}},
		{"1.0.43.10.in-addr.arpa.", dns.TypeA, "NOERROR", nil},
		// Other addresses, and the endpoints of a service with a
		// cluster IP, are the node's resolvers' to answer.
		{"10.2.0.192.in-addr.arpa.", PTR, "NOERROR", []string{"PTR host.example.net."}},
		{"9.1.42.10.in-addr.arpa.", PTR, "NOERROR", []string{"PTR host.example.net."}},
	})
}

func TestDNSExternalName(t *testing.T) {
	const A = dns.TypeA
	runDNSCases(t, []dnsCase{
		{"ext.apps.svc.cluster.local.", dns.TypeCNAME, "NOERROR", []string{"CNAME www.example.com."}},
		{"ext.apps.svc.cluster.local.", A, "NOERROR", []string{"CNAME www.example.com.", "A 192.0.2.99"}},
		{"alias.apps.svc.cluster.local.", A, "NOERROR", []string{"CNAME dual.apps.svc.cluster.local.", "A 10.43.0.30"}},
		{"alias.apps.svc.cluster.local.", dns.TypeAAAA, "NOERROR", []string{"CNAME dual.apps.svc.cluster.local.", "AAAA fd43::30"}},
		{"x.ext.apps.svc.cluster.local.", A, "NXDOMAIN", nil},
	})
}

// TestDNSForwards checks that names outside the cluster go to the node's
// resolvers, and that cluster names never do.
func TestDNSForwards(t *testing.T) {
	s, up := newTestDNS()
	rcode, got, _, _ := query(t, s, "example.org.", dns.TypeA)
	if rcode != "NOERROR" || !cmp.Equal(got, []string{"A 192.0.2.99"}) {
		t.Errorf("example.org. A = %s %q, want the upstream's answer", rcode, got)
	}
	query(t, s, "nope.apps.svc.cluster.local.", dns.TypeA)
	query(t, s, "0.43.10.in-addr.arpa.", dns.TypePTR)
	want := []string{"A example.org.", "PTR 0.43.10.in-addr.arpa."}
	if !cmp.Equal(up.asked, want) {
		t.Errorf("asked upstream %q, want %q", up.asked, want)
	}
}

func TestDNSNotImplemented(t *testing.T) {
	s, _ := newTestDNS()
	req := new(dns.Msg)
	req.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	req.Opcode = dns.OpcodeUpdate
	w := &fakeWriter{}
	s.ServeDNS(w, req)
	if w.msg == nil || w.msg.Rcode != dns.RcodeNotImplemented {
		t.Errorf("update = %v, want NOTIMP", w.msg)
	}
}

// TestDNSOtherDomain checks a cluster domain other than cluster.local.
func TestDNSOtherDomain(t *testing.T) {
	s := newDNSServer(netip.MustParseAddr("10.42.0.1"), "K.Test", slog.New(slog.DiscardHandler))
	s.setRecords(newRecords(dnsFixture()))
	up := &upstreamFake{}
	s.exchange = up.exchange
	if _, got, _, _ := query(t, s, "_https._tcp.kubernetes.default.svc.k.test.", dns.TypeSRV); !cmp.Equal(got, []string{"SRV 443 kubernetes.default.svc.k.test."}) {
		t.Errorf("SRV = %q", got)
	}
	if _, got, _, _ := query(t, s, "1.0.43.10.in-addr.arpa.", dns.TypePTR); !cmp.Equal(got, []string{"PTR kubernetes.default.svc.k.test."}) {
		t.Errorf("PTR = %q", got)
	}
	query(t, s, "kubernetes.default.svc.cluster.local.", dns.TypeA)
	if len(up.asked) != 1 {
		t.Errorf("cluster.local not forwarded in domain k.test: asked %q", up.asked)
	}
}

// tcpWriter is a fakeWriter for a client over TCP.
type tcpWriter struct{ *fakeWriter }

func (w tcpWriter) RemoteAddr() net.Addr { return &net.TCPAddr{} }

// TestDNSTruncation checks that a headless service with more endpoints
// than a datagram holds answers UDP truncated, with TC set, and TCP in
// full.
func TestDNSTruncation(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "big"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}}
	var eps []discoveryv1.Endpoint
	for i := range 100 {
		eps = append(eps, testEndpoint(fmt.Sprintf("10.42.0.%d", i+1), "", true))
	}
	s := newDNSServer(netip.MustParseAddr("10.42.0.1"), "", slog.New(slog.DiscardHandler))
	s.setRecords(newRecords([]*corev1.Service{svc}, mergedSlices(testSlice("apps", "big-a", "big", nil, eps...))))
	tests := []struct {
		name      string
		tcp       bool
		edns      uint16
		truncated bool
		maxLen    int
	}{
		{"udp", false, 0, true, dns.MinMsgSize},
		{"udp edns0 1232", false, 1232, true, 1232},
		{"udp edns0 4096", false, 4096, false, 4096},
		{"tcp", true, 0, false, dns.MaxMsgSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion("big.apps.svc.cluster.local.", dns.TypeA)
			if tc.edns > 0 {
				req.SetEdns0(tc.edns, false)
			}
			fw := &fakeWriter{}
			var w dns.ResponseWriter = fw
			if tc.tcp {
				w = tcpWriter{fw}
			}
			s.ServeDNS(w, req)
			m := fw.msg
			b, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if m.Truncated != tc.truncated || len(b) > tc.maxLen {
				t.Errorf("reply: %d answers, %d bytes, TC %v; want TC %v, at most %d bytes", len(m.Answer), len(b), m.Truncated, tc.truncated, tc.maxLen)
			}
			if !tc.truncated && len(m.Answer) != 100 {
				t.Errorf("reply: %d answers, want 100", len(m.Answer))
			}
		})
	}
}
