package agent

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// dnsTTL is the TTL of cluster answers, short because services change.
const dnsTTL = 5

// dnsRecords is an immutable index of the cluster's names, rebuilt on
// every change. Names are lowercase, without the cluster domain.
type dnsRecords struct {
	// services by "name.namespace".
	services map[string]*dnsService
}

// dnsService is what DNS answers about one service.
type dnsService struct {
	clusterIP netip.Addr // invalid for a headless service
	// ports are the service's named ports ("name/proto"), for SRV.
	ports map[string]uint16
	// backends are the ready endpoints by "name/proto" port; addrs the
	// ready addresses, sorted (a headless service's A records).
	backends map[string][]netip.AddrPort
	addrs    []netip.Addr
}

// newRecords indexes services and their endpoints.
func newRecords(svcs []*corev1.Service, eps []*corev1.Endpoints) *dnsRecords {
	r := &dnsRecords{services: make(map[string]*dnsService, len(svcs))}
	byKey := make(map[string]*corev1.Endpoints, len(eps))
	for _, e := range eps {
		byKey[e.Namespace+"/"+e.Name] = e
	}
	for _, s := range svcs {
		if s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		ds := &dnsService{ports: map[string]uint16{}, backends: map[string][]netip.AddrPort{}}
		if ip, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil {
			ds.clusterIP = ip
		}
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				ds.ports[portKey(p.Name, p.Protocol)] = uint16(p.Port)
			}
		}
		if e := byKey[s.Namespace+"/"+s.Name]; e != nil {
			ds.addEndpoints(e)
		}
		r.services[strings.ToLower(s.Name+"."+s.Namespace)] = ds
	}
	return r
}

func (ds *dnsService) addEndpoints(e *corev1.Endpoints) {
	for _, ss := range e.Subsets {
		for _, a := range ss.Addresses {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				continue
			}
			ds.addrs = append(ds.addrs, ip)
			for _, p := range ss.Ports {
				if p.Name != "" {
					k := portKey(p.Name, p.Protocol)
					ds.backends[k] = append(ds.backends[k], netip.AddrPortFrom(ip, uint16(p.Port)))
				}
			}
		}
	}
	slices.SortFunc(ds.addrs, netip.Addr.Compare)
	ds.addrs = slices.Compact(ds.addrs)
	for _, b := range ds.backends {
		slices.SortFunc(b, netip.AddrPort.Compare)
	}
}

func portKey(name string, proto corev1.Protocol) string {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return strings.ToLower(name + "/" + string(proto))
}

// answer fills m, a reply to q, for a name in the cluster domain ("cluster.local.");
// rel is the name without the domain, lowercase ("web.default.svc"). It
// reports whether the name exists.
func (r *dnsRecords) answer(m *dns.Msg, q dns.Question, rel, domain string) bool {
	labels := strings.Split(rel, ".")
	n := len(labels)
	switch {
	case n >= 3 && labels[n-1] == "svc":
		return r.answerService(m, q, labels[:n-1], domain)
	case n == 3 && labels[2] == "pod":
		// a-b-c-d.namespace.pod: the address in the name.
		ip, err := netip.ParseAddr(strings.ReplaceAll(labels[0], "-", "."))
		if err != nil || !ip.Is4() {
			return false
		}
		addA(m, q, q.Name, ip)
		return true
	}
	return false
}

// answerService answers svc.ns, host.svc.ns and _port._proto.svc.ns.
func (r *dnsRecords) answerService(m *dns.Msg, q dns.Question, labels []string, domain string) bool {
	n := len(labels)
	ds := r.services[labels[n-2]+"."+labels[n-1]]
	if ds == nil {
		return false
	}
	base := labels[n-2] + "." + labels[n-1] + ".svc." + domain
	switch n {
	case 2:
		if ds.clusterIP.IsValid() {
			addA(m, q, q.Name, ds.clusterIP)
			return true
		}
		for _, ip := range ds.addrs {
			addA(m, q, q.Name, ip)
		}
		return true
	case 3:
		// A headless service's pod by its address: 10-42-0-5.svc.ns.
		ip, err := netip.ParseAddr(strings.ReplaceAll(labels[0], "-", "."))
		if err != nil || !slices.Contains(ds.addrs, ip) {
			return false
		}
		addA(m, q, q.Name, ip)
		return true
	case 4:
		return ds.answerSRV(m, q, labels, base)
	}
	return false
}

// answerSRV answers _port._proto.svc.ns: the service name for a service
// with a cluster IP, each ready backend for a headless one.
func (ds *dnsService) answerSRV(m *dns.Msg, q dns.Question, labels []string, base string) bool {
	port, proto := strings.TrimPrefix(labels[0], "_"), strings.TrimPrefix(labels[1], "_")
	k := port + "/" + proto
	if len(labels[0]) < 2 || len(labels[1]) < 2 || labels[0][0] != '_' || labels[1][0] != '_' {
		return false
	}
	p, ok := ds.ports[k]
	if !ok {
		return false
	}
	if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
		return true
	}
	srv := func(target string, port uint16) {
		m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: 100, Port: port, Target: target})
	}
	if ds.clusterIP.IsValid() {
		srv(base, p)
		m.Extra = append(m.Extra, &dns.A{Hdr: hdr(base, dns.TypeA), A: ds.clusterIP.AsSlice()})
		return true
	}
	for _, b := range ds.backends[k] {
		target := strings.ReplaceAll(b.Addr().String(), ".", "-") + "." + base
		srv(target, b.Port())
		m.Extra = append(m.Extra, &dns.A{Hdr: hdr(target, dns.TypeA), A: b.Addr().AsSlice()})
	}
	return true
}

// addA adds an A record for ip if q asks for one; other types of an
// existing name get an empty answer.
func addA(m *dns.Msg, q dns.Question, name string, ip netip.Addr) {
	if (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY) && ip.Is4() {
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(name, dns.TypeA), A: ip.AsSlice()})
	}
}

func hdr(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: dnsTTL}
}

// soa is the cluster domain's SOA, sent with negative answers.
func soa(domain string) dns.RR {
	return &dns.SOA{Hdr: hdr(domain, dns.TypeSOA), Ns: "ns.dns." + domain, Mbox: "hostmaster." + domain,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: dnsTTL}
}
