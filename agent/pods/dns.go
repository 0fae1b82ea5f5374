package pods

import (
	"bufio"
	"net/netip"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/internal/defaults"
)

// hostResolvConf is read for the upstream nameservers when no cluster DNS
// is configured; systemdResolvConf replaces it when it names only a
// loopback stub, which a pod's network namespace cannot reach.
var (
	hostResolvConf    = "/etc/resolv.conf"
	systemdResolvConf = "/run/systemd/resolve/resolv.conf"
)

// Limits of a pod's resolver configuration, as the kubelet applies them:
// glibc reads at most three nameservers, and long search lists are cut.
const (
	maxNameservers     = 3
	maxSearchPaths     = 32
	maxSearchListChars = 2048
	maxSearchLen       = 253
)

// podDNSKind is where a pod's resolver configuration starts from.
type podDNSKind int

const (
	podDNSCluster podDNSKind = iota // the cluster DNS
	podDNSHost                      // the node's resolvers
	podDNSNone                      // nothing: dnsConfig only
)

// dnsKind maps a pod's dnsPolicy as the kubelet does: ClusterFirst falls
// back to the node's resolvers for a pod on the host's network (only
// ClusterFirstWithHostNet keeps the cluster DNS there), and for every pod
// when no cluster DNS is configured.
func (m *Manager) dnsKind(pod *corev1.Pod) podDNSKind {
	kind := podDNSCluster
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
		return podDNSNone
	case corev1.DNSDefault:
		kind = podDNSHost
	case corev1.DNSClusterFirstWithHostNet:
	default:
		if pod.Spec.HostNetwork {
			kind = podDNSHost
		}
	}
	if kind == podDNSCluster && len(m.cfg.ClusterDNS) == 0 {
		kind = podDNSHost
	}
	return kind
}

// resolvConf returns the content of the pod's /etc/resolv.conf: the
// cluster DNS with the namespace's search list and ndots:5, or the node's
// resolvers, or nothing (dnsPolicy None), with the pod's dnsConfig merged
// in. It returns "" (the runtime's default) only when the node's resolvers
// are unknown and the pod adds nothing.
func (m *Manager) resolvConf(pod *corev1.Pod) string {
	var dc dnsConfig
	switch m.dnsKind(pod) {
	case podDNSCluster:
		dc.servers = m.cfg.ClusterDNS
		dc.search = appendNew(clusterSearch(pod.Namespace, m.cfg.ClusterDomain), m.hostDNS.search...)
		dc.options = []string{"ndots:5"}
	case podDNSHost:
		dc = m.hostDNS
		if len(dc.servers) == 0 && pod.Spec.DNSConfig == nil {
			return ""
		}
	}
	if pc := pod.Spec.DNSConfig; pc != nil {
		dc.servers = appendNew(dc.servers, pc.Nameservers...)
		dc.search = appendNew(dc.search, pc.Searches...)
		for _, o := range pc.Options {
			opt := o.Name
			if o.Value != nil && *o.Value != "" {
				opt += ":" + *o.Value
			}
			dc.options = setOption(dc.options, opt)
		}
	}
	if len(dc.servers) > maxNameservers {
		dc.servers = dc.servers[:maxNameservers]
	}
	return formatResolvConf(dc.servers, fitSearch(dc.search), dc.options)
}

// fitSearch cuts a search list to what resolvers accept, as the kubelet
// does: at most 32 domains, none longer than 253 characters, and a line
// of at most 2048 characters, dropping domains from the end.
func fitSearch(search []string) []string {
	if len(search) > maxSearchPaths {
		search = search[:maxSearchPaths]
	}
	out := make([]string, 0, len(search))
	n := -1
	for _, s := range search {
		if len(s) > maxSearchLen {
			continue
		}
		if n+1+len(s) > maxSearchListChars {
			break
		}
		n += 1 + len(s)
		out = append(out, s)
	}
	return out
}

func clusterSearch(ns, domain string) []string {
	if domain == "" {
		domain = defaults.ClusterDomain
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
			// The last of these lines wins, as in glibc. A trailing dot
			// is dropped so that a domain is listed once.
			dc.search = nil
			for _, d := range fields[1:] {
				if d = strings.TrimSuffix(d, "."); d != "" {
					dc.search = appendNew(dc.search, d)
				}
			}
		case "options":
			dc.options = append(dc.options, fields[1:]...)
		}
	}
	return dc
}
