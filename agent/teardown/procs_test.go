package teardown

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRecognize(t *testing.T) {
	self := "/usr/local/bin/minik"
	tests := []struct {
		name              string
		p                 proc
		minik, shim       bool
		containerdDataDir string
	}{
		{"server", proc{args: []string{"/usr/local/bin/minik", "server", "--data-dir", "/d"}, exe: self}, true, false, ""},
		{"agent by name", proc{args: []string{"minik", "agent"}, exe: "/other/minik"}, true, false, ""},
		{"client verb", proc{args: []string{"minik", "get", "pods"}, exe: self}, false, false, ""},
		{"pause", proc{args: []string{"/pause", "pause"}, exe: self}, false, false, ""},
		{"shim", proc{args: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "minik-node1", "-id", "x", "-address", "/d/agent/containerd/containerd.sock"}}, false, true, ""},
		{"other shim", proc{args: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "x"}}, false, false, ""},
		{"agent containerd", proc{args: []string{"/usr/bin/containerd", "--config", "/d/agent/containerd/config.toml"}}, false, false, "/d/agent"},
		{"system containerd", proc{args: []string{"/usr/bin/containerd", "--config", "/etc/containerd/config.toml"}}, false, false, ""},
		{"plain containerd", proc{args: []string{"/usr/bin/containerd"}}, false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isMinik(tc.p, self); got != tc.minik {
				t.Errorf("isMinik(%q) = %v, want %v", tc.p.args, got, tc.minik)
			}
			if got := isShim(tc.p); got != tc.shim {
				t.Errorf("isShim(%q) = %v, want %v", tc.p.args, got, tc.shim)
			}
			if got := agentContainerd(tc.p); got != tc.containerdDataDir {
				t.Errorf("agentContainerd(%q) = %q, want %q", tc.p.args, got, tc.containerdDataDir)
			}
		})
	}
}

func TestFlagValue(t *testing.T) {
	args := []string{"agent", "-d", "/a", "--data-dir=/b", "--node-name", "n"}
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"d"}, "/a"},
		{[]string{"data-dir"}, "/b"},
		{[]string{"node-name"}, "n"},
		{[]string{"token"}, ""},
	} {
		if got := flagValue(args, tc.names...); got != tc.want {
			t.Errorf("flagValue(%q, %q) = %q, want %q", args, tc.names, got, tc.want)
		}
	}
}

func TestDescendants(t *testing.T) {
	procs := []proc{{pid: 10, ppid: 1}, {pid: 11, ppid: 10}, {pid: 12, ppid: 11}, {pid: 13, ppid: 10}, {pid: 20, ppid: 1}}
	if diff := cmp.Diff([]int{11, 13, 12}, descendants(procs, 10)); diff != "" {
		t.Errorf("descendants(10) (-want +got):\n%s", diff)
	}
}

func TestListProcsFindsSelf(t *testing.T) {
	for _, p := range listProcs("/proc") {
		if p.pid == os.Getpid() {
			if p.ppid != os.Getppid() || len(p.args) == 0 {
				t.Errorf("own process = %+v, want ppid %d and args", p, os.Getppid())
			}
			return
		}
	}
	t.Errorf("listProcs did not list this process")
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b/c`); got != "/a b/c" {
		t.Errorf("unescapeMount = %q, want %q", got, "/a b/c")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/y", filepath.Join(wd, "rel")}
	if filepath.Join(wd, "rel") < "/y" {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(want, normalize([]string{"/x/../y", "/y", "rel"})); diff != "" {
		t.Errorf("normalize (-want +got):\n%s", diff)
	}
}
