package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// kubernetesNames are the in-cluster DNS names of the API server's service.
var kubernetesNames = []string{
	"kubernetes",
	"kubernetes.default",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// sans is a set of subject alternative names for a serving certificate.
type sans struct {
	dns map[string]bool
	ips map[netip.Addr]bool
}

func newSANs() sans {
	return sans{dns: map[string]bool{}, ips: map[netip.Addr]bool{}}
}

// add records name as an IP address if it parses as one, else as a DNS
// name. Empty names are ignored.
func (s sans) add(name string) {
	name = strings.TrimSpace(name)
	if name == "" {
		return
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		s.ips[ip.Unmap().WithZone("")] = true
		return
	}
	s.dns[strings.ToLower(strings.TrimSuffix(name, "."))] = true
}

func (s sans) addIP(ip net.IP) {
	if a, ok := netip.AddrFromSlice(ip); ok {
		s.ips[a.Unmap()] = true
	}
}

// addCert records every SAN of cert.
func (s sans) addCert(cert *x509.Certificate) {
	for _, n := range cert.DNSNames {
		s.add(n)
	}
	for _, ip := range cert.IPAddresses {
		s.addIP(ip)
	}
}

// coveredBy reports whether cert carries every name of s.
func (s sans) coveredBy(cert *x509.Certificate) bool {
	have := newSANs()
	have.addCert(cert)
	for n := range s.dns {
		if !have.dns[n] {
			return false
		}
	}
	for ip := range s.ips {
		if !have.ips[ip] {
			return false
		}
	}
	return true
}

// lists returns the names sorted, in the forms x509 templates take.
func (s sans) lists() ([]string, []net.IP) {
	dns := make([]string, 0, len(s.dns))
	for n := range s.dns {
		dns = append(dns, n)
	}
	slices.Sort(dns)
	addrs := make([]netip.Addr, 0, len(s.ips))
	for a := range s.ips {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = net.IP(a.AsSlice())
	}
	return dns, ips
}

// requiredSANs collects the names the serving certificate must carry for
// opts: loopback, localhost, the host name, every interface address, the
// service CIDRs' first addresses, the in-cluster service names, the bind
// address and the extra names.
func requiredSANs(opts Options) (sans, error) {
	s := newSANs()
	s.add("127.0.0.1")
	s.add("::1")
	s.add("localhost")
	host := opts.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return s, fmt.Errorf("host name: %w", err)
		}
		host = h
	}
	s.add(host)
	if err := addInterfaceIPs(s); err != nil {
		return s, err
	}
	apiIPs, err := ServiceAPIAddrs(opts.serviceCIDR())
	if err != nil {
		return s, err
	}
	for _, ip := range apiIPs {
		s.ips[ip] = true
	}
	for _, n := range kubernetesNames {
		s.add(n)
	}
	if ip, err := netip.ParseAddr(opts.BindAddress); err != nil || !ip.IsUnspecified() {
		s.add(opts.BindAddress)
	}
	for _, e := range opts.SANs {
		for _, n := range strings.Split(e, ",") {
			s.add(n)
		}
	}
	return s, nil
}

func addInterfaceIPs(s sans) error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list network interfaces: %w", err)
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			return fmt.Errorf("addresses of interface %q: %w", iface.Name, err)
		}
		for _, a := range addrs {
			switch v := a.(type) {
			case *net.IPNet:
				s.addIP(v.IP)
			case *net.IPAddr:
				s.addIP(v.IP)
			}
		}
	}
	return nil
}

// ServiceAPIAddrs returns the first address of each prefix in cidrs, a
// comma-separated list such as "10.43.0.0/16" or "10.43.0.0/16,fd43::/112":
// the cluster IP of the "kubernetes" service (10.43.0.1 for 10.43.0.0/16).
func ServiceAPIAddrs(cidrs string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, c := range strings.Split(cidrs, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("service CIDR %q: %w", c, err)
		}
		first := p.Masked().Addr().Next()
		if !first.IsValid() || !p.Contains(first) {
			return nil, fmt.Errorf("service CIDR %q has no host addresses", c)
		}
		out = append(out, first.Unmap())
	}
	return out, nil
}
