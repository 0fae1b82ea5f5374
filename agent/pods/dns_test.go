package pods

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestResolvConf(t *testing.T) {
	setResolv(t, "testdata/resolv.conf", "testdata/missing.conf")
	cluster := Config{ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "cluster.local"}
	const clusterSearch = "search ns.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
	const host = "search corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0\n"
	tests := []struct {
		name        string
		cfg         Config
		policy      corev1.DNSPolicy
		hostNetwork bool
		dc          *corev1.PodDNSConfig
		want        string
	}{
		{"cluster DNS", cluster, "", false, nil, clusterSearch + "nameserver 10.43.0.10\noptions ndots:5\n"},
		{"ClusterFirst", cluster, corev1.DNSClusterFirst, false, nil, clusterSearch + "nameserver 10.43.0.10\noptions ndots:5\n"},
		{"other cluster domain", Config{ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "k.test"}, "", false, nil,
			"search ns.svc.k.test svc.k.test k.test corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"ClusterFirst without cluster DNS is Default", Config{ClusterDomain: "k.test"}, corev1.DNSClusterFirst, false, nil, host},
		{"ClusterFirst on the host network is Default", cluster, corev1.DNSClusterFirst, true, nil, host},
		{"ClusterFirstWithHostNet", cluster, corev1.DNSClusterFirstWithHostNet, true, nil, clusterSearch + "nameserver 10.43.0.10\noptions ndots:5\n"},
		{"Default is the host's", cluster, corev1.DNSDefault, false, nil, host},
		{"Default with dnsConfig", cluster, corev1.DNSDefault, false,
			&corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53", "1.1.1.1"}, Searches: []string{"x.example"}},
			"search corp.example x.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 1.1.1.1\noptions edns0\n"},
		{"None with dnsConfig", cluster, corev1.DNSNone, false,
			&corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "edns0"}}},
			"search a.example\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"},
		{"None without dnsConfig", cluster, corev1.DNSNone, false, nil, ""},
		{"dnsConfig overrides ndots and adds", cluster, "", false,
			&corev1.PodDNSConfig{Nameservers: []string{"10.43.0.10", "1.1.1.1"}, Searches: []string{"corp.example", "y.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("1")}, {Name: "timeout", Value: ptr("3")}}},
			"search ns.svc.cluster.local svc.cluster.local cluster.local corp.example y.example\n" +
				"nameserver 10.43.0.10\nnameserver 1.1.1.1\noptions ndots:1 timeout:3\n"},
		{"at most three nameservers", cluster, "", false,
			&corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}},
			clusterSearch + "nameserver 10.43.0.10\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:5\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testManager(t, tc.cfg)
			pod := newPod("p", "")
			pod.Spec.DNSPolicy, pod.Spec.DNSConfig, pod.Spec.HostNetwork = tc.policy, tc.dc, tc.hostNetwork
			if got := m.resolvConf(pod); got != tc.want {
				t.Errorf("resolvConf =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestResolvConfSearchLimits checks that a long search list is cut as the
// kubelet cuts it: 32 domains, none over 253 characters, 2048 in all.
func TestResolvConfSearchLimits(t *testing.T) {
	setResolv(t, "testdata/missing.conf", "testdata/missing.conf")
	m := testManager(t, Config{ClusterDNS: []string{"10.43.0.10"}})
	long := strings.Repeat("a", 254)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("s%02d.%s.example", i, strings.Repeat("b", 88)))
	}
	tests := []struct {
		name     string
		searches []string
		want     int // domains kept after the 3 of the cluster
		maxChars int
	}{
		{"a domain over 253 characters", []string{"ok.example", long}, 1, 2048},
		{"over 32 domains", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
			"q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "aa", "bb", "cc", "dd"}, 29, 2048},
		{"over 2048 characters", many, 19, 2048},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod("p", "")
			pod.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: tc.searches}
			line, _, _ := strings.Cut(m.resolvConf(pod), "\n")
			search := strings.Fields(strings.TrimPrefix(line, "search "))
			if len(search) != 3+tc.want || len(strings.Join(search, " ")) > tc.maxChars {
				t.Errorf("search = %d domains, %d characters; want %d, at most %d", len(search), len(strings.Join(search, " ")), 3+tc.want, tc.maxChars)
			}
			if strings.Contains(line, long) {
				t.Errorf("search kept a domain over 253 characters")
			}
		})
	}
}

// TestResolvConfHostFile checks the reading of the node's resolv.conf:
// the last search or domain line wins, trailing dots and "." dropped.
func TestResolvConfHostFile(t *testing.T) {
	setResolv(t, "testdata/resolv-many.conf", "testdata/missing.conf")
	m := testManager(t, Config{})
	pod := newPod("p", "")
	pod.Spec.DNSPolicy = corev1.DNSDefault
	want := "search a.example b.example\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\noptions rotate\n"
	if got := m.resolvConf(pod); got != want {
		t.Errorf("resolvConf =\n%s\nwant\n%s", got, want)
	}
}

// TestResolvConfSystemdStub checks that a node resolving through
// systemd-resolved's loopback stub gives pods the stub's upstreams.
func TestResolvConfSystemdStub(t *testing.T) {
	setResolv(t, "testdata/resolv-stub.conf", "testdata/resolv-upstream.conf")
	m := testManager(t, Config{})
	pod := newPod("p", "")
	pod.Spec.DNSPolicy = corev1.DNSDefault
	want := "search corp.example\nnameserver 198.51.100.1\n"
	if got := m.resolvConf(pod); got != want {
		t.Errorf("resolvConf =\n%s\nwant\n%s", got, want)
	}
}

func setResolv(t *testing.T, host, systemd string) {
	oldHost, oldSystemd := hostResolvConf, systemdResolvConf
	hostResolvConf, systemdResolvConf = host, systemd
	t.Cleanup(func() { hostResolvConf, systemdResolvConf = oldHost, oldSystemd })
}
