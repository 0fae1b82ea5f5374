package servicenet

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// dnsTTL is the TTL of cluster answers, short because services change.
const dnsTTL = 5

// dnsSchemaVersion is the version of the Kubernetes DNS schema served,
// answered as TXT at dns-version.<domain>.
const dnsSchemaVersion = "1.1.0"

// dnsRecords is an immutable index of the cluster's names, rebuilt on
// every change. Names are lowercase, without the cluster domain.
type dnsRecords struct {
	// services by "name.namespace".
	services map[string]*dnsService
	// namespaces that hold a service: "namespace.svc" exists in them.
	namespaces map[string]bool
	// ptr holds the names of cluster IPs and of the ready endpoints of
	// headless services, relative to the domain ("web.default.svc").
	ptr map[netip.Addr][]string
}

// dnsService is what DNS answers about one service.
type dnsService struct {
	clusterIPs []netip.Addr // none for a headless service
	// externalName is the CNAME target of an ExternalName service, fully
	// qualified and lowercase.
	externalName string
	// ports are the service's named ports by "name/proto", for SRV.
	ports map[string]uint16
	// endpoints are the ready endpoints, sorted by host then address.
	endpoints []dnsEndpoint
}

// dnsEndpoint is one ready address of a service.
type dnsEndpoint struct {
	// host is the endpoint's hostname, or its address with dashes.
	host  string
	ip    netip.Addr
	ports map[string]uint16 // by "name/proto"
}

// headless reports whether the service answers with its endpoints.
func (ds *dnsService) headless() bool { return len(ds.clusterIPs) == 0 && ds.externalName == "" }

// newRecords indexes services and their endpoints, merged from their
// EndpointSlices (see mergeSlices).
func newRecords(svcs []*corev1.Service, eps map[svcKey][]sliceEndpoint) *dnsRecords {
	r := &dnsRecords{
		services:   make(map[string]*dnsService, len(svcs)),
		namespaces: map[string]bool{},
		ptr:        map[netip.Addr][]string{},
	}
	for _, s := range svcs {
		ds := newDNSService(s)
		if ds == nil {
			continue
		}
		base := strings.ToLower(s.Name + "." + s.Namespace)
		if e := eps[svcKey{s.Namespace, s.Name}]; e != nil && ds.externalName == "" {
			ds.addEndpoints(e)
		}
		r.services[base] = ds
		r.namespaces[strings.ToLower(s.Namespace)] = true
		for _, ip := range ds.clusterIPs {
			r.ptr[ip] = append(r.ptr[ip], base+".svc")
		}
		if ds.headless() {
			for _, ep := range ds.endpoints {
				r.ptr[ep.ip] = append(r.ptr[ep.ip], ep.host+"."+base+".svc")
			}
		}
	}
	for ip, names := range r.ptr {
		slices.Sort(names)
		r.ptr[ip] = slices.Compact(names)
	}
	return r
}

// newDNSService returns the records of s without its endpoints, or nil
// for a service DNS cannot name.
func newDNSService(s *corev1.Service) *dnsService {
	ds := &dnsService{ports: map[string]uint16{}}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		if s.Spec.ExternalName == "" {
			return nil
		}
		ds.externalName = dns.Fqdn(strings.ToLower(s.Spec.ExternalName))
		return ds
	}
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{s.Spec.ClusterIP}
	}
	for _, a := range ips {
		if ip, err := netip.ParseAddr(a); err == nil {
			ds.clusterIPs = append(ds.clusterIPs, ip.Unmap())
		}
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			ds.ports[portKey(p.Name, p.Protocol)] = uint16(p.Port)
		}
	}
	return ds
}

// addEndpoints adds the ready endpoints among eps, as CoreDNS answers with
// those only (a Service that publishes not-ready addresses has them
// marked ready by the EndpointSlice controller). An address that several
// slices hold is named once.
func (ds *dnsService) addEndpoints(eps []sliceEndpoint) {
	// Endpoints of one slice share their ports: index them once.
	portsOf := map[*discoveryv1.EndpointPort]map[string]uint16{}
	for _, e := range eps {
		if !e.ready {
			continue
		}
		var ports map[string]uint16
		if len(e.ports) > 0 {
			if ports = portsOf[&e.ports[0]]; ports == nil {
				ports = slicePortKeys(e.ports)
				portsOf[&e.ports[0]] = ports
			}
		}
		ds.endpoints = append(ds.endpoints, dnsEndpoint{host: endpointHost(e.hostname, e.addr), ip: e.addr, ports: ports})
	}
	slices.SortFunc(ds.endpoints, func(a, b dnsEndpoint) int {
		if c := strings.Compare(a.host, b.host); c != 0 {
			return c
		}
		return a.ip.Compare(b.ip)
	})
	ds.endpoints = slices.CompactFunc(ds.endpoints, func(a, b dnsEndpoint) bool { return a.host == b.host && a.ip == b.ip })
}

// endpointHost is an endpoint's name under its service: its hostname, or
// its address with dashes for dots and colons, as CoreDNS names it.
func endpointHost(hostname string, ip netip.Addr) string {
	if hostname != "" {
		return strings.ToLower(hostname)
	}
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip.String())
}

func portKey(name string, proto corev1.Protocol) string {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return strings.ToLower(name + "/" + string(proto))
}

// rrset is what one name holds: addresses for A and AAAA, SRV records, a
// CNAME and TXT strings. SRV targets are relative to the cluster domain;
// the CNAME target is fully qualified.
type rrset struct {
	addrs []netip.Addr
	srvs  []srvRecord
	cname string
	txt   []string
	soa   bool // the domain's apex
}

// srvRecord is one SRV target: the target's name and addresses, for the
// additional section.
type srvRecord struct {
	port   uint16
	target string
	addrs  []netip.Addr
}

// lookup returns the records of rel, a lowercase name without the
// domain ("web.default.svc"), and whether the name exists. A name that
// exists may hold no records of the type asked for (NODATA).
func (r *dnsRecords) lookup(rel string) (rrset, bool) {
	if rel == "" {
		return rrset{soa: true}, true
	}
	l := strings.Split(rel, ".")
	n := len(l)
	switch {
	case n == 1 && l[0] == "dns-version":
		return rrset{txt: []string{dnsSchemaVersion}}, true
	case l[n-1] == "svc":
		return r.lookupService(l[:n-1])
	case l[n-1] == "pod":
		return lookupPod(l[:n-1])
	}
	return rrset{}, false
}

// lookupPod answers "ip.namespace" under pod: the address in the name,
// for any namespace, as CoreDNS's "pods insecure" does.
func lookupPod(l []string) (rrset, bool) {
	switch len(l) {
	case 0, 1:
		return rrset{}, true
	case 2:
		if ip, ok := dashedAddr(l[0]); ok {
			return rrset{addrs: []netip.Addr{ip}}, true
		}
	}
	return rrset{}, false
}

// dashedAddr parses an address written with dashes: 10-42-0-5 or
// fd00--1 (IPv6 with its colons as dashes).
func dashedAddr(s string) (netip.Addr, bool) {
	sep := ":"
	if strings.Count(s, "-") == 3 && !strings.Contains(s, "--") {
		sep = "."
	}
	ip, err := netip.ParseAddr(strings.ReplaceAll(s, "-", sep))
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// lookupService answers the names under svc: "namespace", "name.namespace",
// "host.name.namespace" and "_port._proto.name.namespace".
func (r *dnsRecords) lookupService(l []string) (rrset, bool) {
	n := len(l)
	switch {
	case n == 0:
		return rrset{}, true
	case n == 1:
		return rrset{}, r.namespaces[l[0]]
	}
	base := l[n-2] + "." + l[n-1]
	ds := r.services[base]
	if ds == nil || n > 4 {
		return rrset{}, false
	}
	base += ".svc"
	switch n {
	case 2:
		return ds.serviceRecords()
	case 3:
		return ds.endpointRecords(l[0])
	default:
		return ds.portRecords(l[0], l[1], base)
	}
}

// serviceRecords answers the service's own name: its cluster IPs, its
// ready endpoints when headless (NXDOMAIN without any, as the
// specification asks), or its CNAME.
func (ds *dnsService) serviceRecords() (rrset, bool) {
	switch {
	case ds.externalName != "":
		return rrset{cname: ds.externalName}, true
	case !ds.headless():
		return rrset{addrs: ds.clusterIPs}, true
	case len(ds.endpoints) == 0:
		return rrset{}, false
	}
	var rs rrset
	for _, ep := range ds.endpoints {
		rs.addrs = append(rs.addrs, ep.ip)
	}
	slices.SortFunc(rs.addrs, netip.Addr.Compare)
	rs.addrs = slices.Compact(rs.addrs)
	return rs, true
}

// endpointRecords answers host.name.namespace: the addresses of the
// ready endpoints of that hostname (or dashed address). Under a service,
// "_proto" names the protocol of its SRV records: a name with no records.
func (ds *dnsService) endpointRecords(host string) (rrset, bool) {
	var rs rrset
	for _, ep := range ds.endpoints {
		if ep.host == host && !slices.Contains(rs.addrs, ep.ip) {
			rs.addrs = append(rs.addrs, ep.ip)
		}
	}
	if len(rs.addrs) > 0 {
		return rs, true
	}
	if proto, ok := strings.CutPrefix(host, "_"); ok {
		for k := range ds.ports {
			if strings.HasSuffix(k, "/"+proto) {
				return rs, true
			}
		}
	}
	return rs, false
}

// portRecords answers _port._proto.name.namespace: an SRV record to the
// service for a service with a cluster IP, one per ready endpoint with
// that port for a headless one. A and AAAA questions get the targets'
// addresses, as CoreDNS answers them.
func (ds *dnsService) portRecords(port, proto, base string) (rrset, bool) {
	port, okPort := strings.CutPrefix(port, "_")
	proto, okProto := strings.CutPrefix(proto, "_")
	if !okPort || !okProto || port == "" || proto == "" {
		return rrset{}, false
	}
	k := port + "/" + proto
	p, ok := ds.ports[k]
	if !ok {
		return rrset{}, false
	}
	var rs rrset
	if !ds.headless() {
		rs.srvs = []srvRecord{{port: p, target: base, addrs: ds.clusterIPs}}
		rs.addrs = ds.clusterIPs
		return rs, true
	}
	for _, ep := range ds.endpoints {
		if ep.ports[k] == 0 {
			continue
		}
		rs.srvs = append(rs.srvs, srvRecord{port: ep.ports[k], target: ep.host + "." + base, addrs: []netip.Addr{ep.ip}})
		rs.addrs = append(rs.addrs, ep.ip)
	}
	return rs, len(rs.srvs) > 0
}

// reverse returns the PTR targets of a reverse name ("5.0.42.10.in-addr.arpa."),
// relative to the domain, and whether the name is a full address.
func (r *dnsRecords) reverse(name string) ([]string, bool) {
	ip, ok := reverseAddr(name)
	if !ok {
		return nil, false
	}
	return r.ptr[ip], true
}

// reverseAddr parses a full reverse name of in-addr.arpa or ip6.arpa.
func reverseAddr(name string) (netip.Addr, bool) {
	if s, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		l := strings.Split(s, ".")
		if len(l) != 4 {
			return netip.Addr{}, false
		}
		slices.Reverse(l)
		ip, err := netip.ParseAddr(strings.Join(l, "."))
		return ip, err == nil
	}
	if s, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		l := strings.Split(s, ".")
		if len(l) != 32 {
			return netip.Addr{}, false
		}
		var b strings.Builder
		for i := len(l) - 1; i >= 0; i-- {
			if len(l[i]) != 1 {
				return netip.Addr{}, false
			}
			b.WriteString(l[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		ip, err := netip.ParseAddr(b.String())
		return ip.Unmap(), err == nil
	}
	return netip.Addr{}, false
}

// fill adds to m the records of rs that answer q, and the addresses of
// SRV targets as additional records. A CNAME answers every type.
func (rs rrset) fill(m *dns.Msg, q dns.Question, domain string) {
	all := q.Qtype == dns.TypeANY
	if rs.cname != "" {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME), Target: rs.cname})
	}
	if rs.soa && (q.Qtype == dns.TypeSOA || all) {
		m.Answer = append(m.Answer, soa(domain))
	}
	m.Answer = appendAddrs(m.Answer, q.Name, q.Qtype, rs.addrs)
	if q.Qtype == dns.TypeTXT || all {
		for _, t := range rs.txt {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(q.Name, dns.TypeTXT), Txt: []string{t}})
		}
	}
	if q.Qtype != dns.TypeSRV && !all {
		return
	}
	weight := uint16(100)
	if len(rs.srvs) > 1 {
		weight = uint16(100 / len(rs.srvs))
	}
	for _, srv := range rs.srvs {
		target := srv.target + "." + domain
		m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: weight, Port: srv.port, Target: target})
		m.Extra = appendAddrs(m.Extra, target, dns.TypeANY, srv.addrs)
	}
}

// appendAddrs appends the A and AAAA records of addrs that qtype asks for.
func appendAddrs(rrs []dns.RR, name string, qtype uint16, addrs []netip.Addr) []dns.RR {
	for _, ip := range addrs {
		switch {
		case ip.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
			rrs = append(rrs, &dns.A{Hdr: hdr(name, dns.TypeA), A: ip.AsSlice()})
		case ip.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			rrs = append(rrs, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
	return rrs
}

func hdr(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: dnsTTL}
}

// soa is the cluster domain's SOA, sent with negative answers.
func soa(domain string) dns.RR {
	return &dns.SOA{Hdr: hdr(domain, dns.TypeSOA), Ns: "ns.dns." + domain, Mbox: "hostmaster." + domain,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: dnsTTL}
}
