//go:build integration

package pods

import (
	"os"
	"strings"
	"testing"
)

// A pod on the node's network shares the node's network and UTS
// namespaces, reports the node's IP and gets the node's /etc/hosts, not a
// managed one.
func TestIntegrationHostNetwork(t *testing.T) {
	e := newIntEnv(t)
	pod := newPod("host-net", "exec sleep 1000")
	pod.Spec.HostNetwork = true
	h := startInt(t, e, Config{}, pod)
	st := h.rep.waitStatus(t, pod.UID, intWait, "Running", allRunning)
	if st.PodIP != "192.0.2.10" || st.PodIP != st.HostIP {
		t.Errorf("podIP %q hostIP %q, want both the node's 192.0.2.10", st.PodIP, st.HostIP)
	}
	nodeNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := h.exec(t, pod, "c0", "ls", "-l", "/proc/self/ns/net"); !strings.HasSuffix(strings.TrimSpace(out), "-> "+nodeNS) {
		t.Errorf("network namespace in the pod = %q, want the node's %q", out, nodeNS)
	}
	nodeName, _ := os.Hostname()
	if out, _ := h.exec(t, pod, "c0", "hostname"); strings.TrimSpace(out) != nodeName {
		t.Errorf("hostname in the pod = %q, want the node's %q", out, nodeName)
	}
	nodeHosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := h.exec(t, pod, "c0", "cat", "/etc/hosts"); out != string(nodeHosts) {
		t.Errorf("/etc/hosts in the pod = %q, want the node's %q", out, nodeHosts)
	}
}
