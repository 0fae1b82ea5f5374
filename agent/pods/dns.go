package pods

import (
	"bufio"
	"net/netip"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// hostResolvConf is read for the upstream nameservers when no cluster DNS
// is configured; systemdResolvConf replaces it when it names only a
// loopback stub, which a pod's network namespace cannot reach.
var (
	hostResolvConf    = "/etc/resolv.conf"
	systemdResolvConf = "/run/systemd/resolve/resolv.conf"
)

// resolvConf returns the content of the pod's /etc/resolv.conf, or "" for
// the host's own (dnsPolicy Default).
func (m *Manager) resolvConf(pod *corev1.Pod) string {
	var servers, search, options []string
	switch pod.Spec.DNSPolicy {
	case corev1.DNSDefault:
		if pod.Spec.DNSConfig == nil {
			return ""
		}
		servers, search, options = m.hostDNS.servers, m.hostDNS.search, m.hostDNS.options
	case corev1.DNSNone:
	default:
		servers = m.cfg.ClusterDNS
		if len(servers) == 0 {
			servers = m.hostDNS.servers
		}
		search = appendNew(clusterSearch(pod.Namespace, m.cfg.ClusterDomain), m.hostDNS.search...)
		options = []string{"ndots:5"}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = appendNew(servers, dc.Nameservers...)
		search = appendNew(search, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			options = setOption(options, opt)
		}
	}
	return formatResolvConf(servers, search, options)
}

func clusterSearch(ns, domain string) []string {
	if domain == "" {
		domain = "cluster.local"
	}
	return []string{ns + ".svc." + domain, "svc." + domain, domain}
}

func formatResolvConf(servers, search, options []string) string {
	var b strings.Builder
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.String()
}

func appendNew(list []string, more ...string) []string {
	out := append([]string(nil), list...)
	for _, s := range more {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// setOption adds opt ("name" or "name:value"), replacing an option of the
// same name.
func setOption(opts []string, opt string) []string {
	name, _, _ := strings.Cut(opt, ":")
	out := make([]string, 0, len(opts)+1)
	for _, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n != name {
			out = append(out, o)
		}
	}
	return append(out, opt)
}

// dnsConfig is the resolver configuration of the host.
type dnsConfig struct {
	servers, search, options []string
}

// readHostDNS reads the host's resolver configuration, preferring
// systemd-resolved's upstream list over a loopback stub.
func readHostDNS() dnsConfig {
	dc := parseResolvConf(hostResolvConf)
	if len(dc.servers) > 0 && allLoopback(dc.servers) {
		if up := parseResolvConf(systemdResolvConf); len(up.servers) > 0 {
			up.search = appendNew(dc.search, up.search...)
			return up
		}
	}
	return dc
}

func allLoopback(servers []string) bool {
	for _, s := range servers {
		if a, err := netip.ParseAddr(s); err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

func parseResolvConf(path string) dnsConfig {
	var dc dnsConfig
	f, err := os.Open(path)
	if err != nil {
		return dc
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			dc.servers = append(dc.servers, fields[1])
		case "search", "domain":
			dc.search = appendNew(dc.search, fields[1:]...)
		case "options":
			dc.options = append(dc.options, fields[1:]...)
		}
	}
	return dc
}
