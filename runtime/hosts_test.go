package runtime

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostsFile(t *testing.T) {
	pod := &PodSpec{Name: "web-0", Hostname: "web-0", FQDN: "web-0.web.shop.svc.cluster.local",
		HostAliases: []HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo.local", "bar.local"}}}}
	want := "# Kubernetes-managed hosts file.\n" +
		"127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\n" +
		"fe00::1\tip6-allnodes\n" +
		"fe00::2\tip6-allrouters\n" +
		"10.42.0.7\tweb-0.web.shop.svc.cluster.local\tweb-0\n" +
		"\n# Entries added by HostAliases.\n" +
		"123.45.67.89\tfoo.local\tbar.local\n"
	if got := hostsFile(pod, "10.42.0.7"); got != want {
		t.Errorf("hostsFile =\n%s\nwant\n%s", got, want)
	}
	plain := hostsFile(&PodSpec{Name: "p"}, "10.42.0.8")
	if want := "10.42.0.8\tp\n"; plain[len(plain)-len(want):] != want {
		t.Errorf("hostsFile without FQDN or aliases ends %q, want %q", plain, want)
	}
}

// A pod on the node's network gets the node's hosts file and hostname,
// with its host aliases after the file.
func TestNodeHostFiles(t *testing.T) {
	node, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Skipf("no /etc/hosts: %v", err)
	}
	wantName, _ := os.Hostname()
	name, hosts, err := nodeHostFiles(&PodSpec{Name: "p", HostNetwork: true})
	if err != nil || name != wantName || hosts != string(node) {
		t.Errorf("nodeHostFiles = %q, %q, %v; want %q and the node's /etc/hosts", name, hosts, err, wantName)
	}
	_, hosts, _ = nodeHostFiles(&PodSpec{Name: "p", HostNetwork: true,
		HostAliases: []HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo.local"}}}})
	if !strings.HasPrefix(hosts, string(node)) || !strings.HasSuffix(hosts, "# Entries added by HostAliases.\n123.45.67.89\tfoo.local\n") {
		t.Errorf("hosts with aliases = %q, want the node's file then the aliases", hosts)
	}
}

func TestSandboxSpecHostNetwork(t *testing.T) {
	c := &Containerd{}
	c.pause.rootfs = t.TempDir()
	ctx := namespaces.WithNamespace(context.Background(), "test")
	for _, hostNet := range []bool{false, true} {
		pod := &PodSpec{UID: "u", Name: "p", HostNetwork: hostNet}
		s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "sandbox-u"}, c.sandboxSpec(pod, "sandbox-u")...)
		if err != nil {
			t.Fatal(err)
		}
		var own []specs.LinuxNamespaceType
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace || ns.Type == specs.UTSNamespace {
				own = append(own, ns.Type)
			}
		}
		if hostNet && (len(own) != 0 || s.Hostname != "") {
			t.Errorf("host network sandbox: own namespaces %v, hostname %q; want none and none", own, s.Hostname)
		}
		if !hostNet && (len(own) != 2 || s.Hostname != "p") {
			t.Errorf("sandbox: own namespaces %v, hostname %q; want network and uts, p", own, s.Hostname)
		}
	}
}
