package runtime

import "testing"

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
