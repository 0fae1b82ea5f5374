//go:build integration

package test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/minik-dev/minik/network/networktest"
)

// hostnameRef is the image holding busybox and test/testdata/hostname.
const hostnameRef = "docker.io/minik/hostname:test"

// hostnamePod runs testdata/hostname on node with the given arguments,
// or sleeps there without any.
func hostnamePod(name, node string, labels map[string]string, ports []corev1.ContainerPort, args ...string) *corev1.Pod {
	grace := int64(1)
	command := append([]string{"/hostname"}, args...)
	if len(args) == 0 {
		command = []string{"sleep", "3600"} // a client
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "hostname", Image: hostnameRef, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: command,
				Ports:   ports,
			}},
		},
	}
}

// createPods creates the pods in default and waits until they run; it
// returns them as they run, by name.
func createPods(t *testing.T, cs *kubernetes.Clientset, pods ...*corev1.Pod) map[string]*corev1.Pod {
	t.Helper()
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", p.Name, err)
		}
	}
	out := map[string]*corev1.Pod{}
	for _, p := range pods {
		out[p.Name] = waitPodRunning(t, cs, "default", p.Name)
	}
	return out
}

// udpAsk sends one datagram to addr from node a's network namespace, as a
// process on the node (a hostNetwork pod) would, and returns the answer.
func udpAsk(a *agentProc, addr string) (string, error) {
	var answer string
	err := networktest.InNetNS("/run/netns/"+a.netns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hostName\n")); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		answer = strings.TrimSpace(string(buf[:n]))
		return err
	})
	return answer, err
}

// tcpAsk connects to addr from node a's network namespace, from local
// address from if it is not empty, and returns what the server sends.
func tcpAsk(a *agentProc, from, addr string) (string, error) {
	var answer string
	err := networktest.InNetNS("/run/netns/"+a.netns, func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		if from != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		answer = strings.TrimSpace(string(buf[:n]))
		return err
	})
	return answer, err
}

// uplinkOnBridge moves node a's address from its link to the host onto a
// bridge in its namespace that has that link as its port.
func (a *agentProc) uplinkOnBridge(t *testing.T, gateway string) {
	for _, args := range [][]string{
		{"ip", "link", "add", "up0", "type", "bridge"},
		{"ip", "link", "set", "up0", "up"},
		{"ip", "addr", "del", a.ip + "/24", "dev", "eth0"},
		{"ip", "link", "set", "eth0", "master", "up0"},
		{"ip", "addr", "add", a.ip + "/24", "dev", "up0"},
		{"ip", "route", "replace", "default", "via", gateway},
	} {
		if out, err := a.inNode(args...); err != nil {
			t.Fatalf("%v in %s: %v\n%s", args, a.name, err, out)
		}
	}
}

// TestIntegrationNodeNetPaths checks the paths between pods, nodes and
// node ports on two nodes, one of them with its address on a bridge: a
// pod or a node reaching a NodePort at either node's address, with and
// without ClientIP affinity, whichever node the chosen backend runs on;
// UDP from a node to pods on both nodes; and three pods sharing one
// hostPort by host IP and protocol.
func TestIntegrationNodeNetPaths(t *testing.T) {
	s, ip := startClusterServer(t)
	image := func(t testing.TB, dir string) { writeProgramImage(t, dir, "hostname", hostnameRef) }
	// Node 1's address lives on a bridge, with node 2 behind one of its
	// ports, as on a host whose uplink is bridged (or node 2 a VM of it).
	n1 := newAgent(t, s, ip, 1, image, "--heartbeat-interval", "1s")
	n1.uplinkOnBridge(t, ip)
	n1.start()
	t.Cleanup(n1.kill)
	n2 := startAgentWithImages(t, s, ip, 2, image, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	waitNodeReady(t, cs, n2.name)
	ctx := context.Background()

	backend := map[string]string{"app": "hostname"}
	tcpUDP := []string{"-tcp", "9376", "-udp", "8081"}
	pods := createPods(t, cs,
		hostnamePod("backend-0", n1.name, backend, nil, tcpUDP...),
		hostnamePod("backend-1", n2.name, backend, nil, tcpUDP...),
		hostnamePod("backend-2", n1.name, backend, nil, tcpUDP...),
		hostnamePod("client-1", n1.name, nil, nil),
		hostnamePod("client-2", n2.name, nil, nil),
		hostnamePod("hostport-lo", n1.name, nil,
			[]corev1.ContainerPort{{ContainerPort: 8080, HostPort: 54323, HostIP: "127.0.0.1", Protocol: corev1.ProtocolTCP}},
			"-tcp", "8080"),
		hostnamePod("hostport-tcp", n1.name, nil,
			[]corev1.ContainerPort{{ContainerPort: 8080, HostPort: 54323, HostIP: n1.ip, Protocol: corev1.ProtocolTCP}},
			"-tcp", "8080"),
		hostnamePod("hostport-udp", n1.name, nil,
			[]corev1.ContainerPort{{ContainerPort: 8080, HostPort: 54323, HostIP: n1.ip, Protocol: corev1.ProtocolUDP}},
			"-udp", "8080"),
	)

	// UDP from each node to each backend pod.
	t.Run("udp node to pod", func(t *testing.T) {
		for _, n := range []*agentProc{n1, n2} {
			for _, b := range []string{"backend-0", "backend-1", "backend-2"} {
				addr := net.JoinHostPort(pods[b].Status.PodIP, "8081")
				eventually(t, 20*time.Second, fmt.Sprintf("UDP from %s to %s (%s)", n.name, b, addr), func() error {
					got, err := udpAsk(n, addr)
					if err != nil {
						return err
					}
					if got != b {
						return fmt.Errorf("answered %q", got)
					}
					return nil
				})
			}
		}
	})

	t.Run("hostPort by host IP and protocol", func(t *testing.T) {
		port := "54323"
		for _, c := range []struct {
			proto, from, addr, want string
		}{
			{"tcp", n1.ip, net.JoinHostPort("127.0.0.1", port), "hostport-lo"},
			{"tcp", "", net.JoinHostPort(n1.ip, port), "hostport-tcp"},
			{"udp", "", net.JoinHostPort(n1.ip, port), "hostport-udp"},
		} {
			eventually(t, 20*time.Second, fmt.Sprintf("%s from %s to %s", c.proto, n1.name, c.addr), func() error {
				var got string
				var err error
				if c.proto == "tcp" {
					got, err = tcpAsk(n1, c.from, c.addr)
				} else {
					got, err = udpAsk(n1, c.addr)
				}
				if err != nil {
					return err
				}
				if got != c.want {
					return fmt.Errorf("answered %q", got)
				}
				return nil
			})
		}
	})

	// A NodePort service over the backends, without and with affinity:
	// from a pod on each node to each node's address, every request must
	// be answered (the pod cannot retry its way around a broken path
	// when affinity pins it to one backend).
	for _, affinity := range []corev1.ServiceAffinity{corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP} {
		name := "np-" + strings.ToLower(string(affinity))
		svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeNodePort, Selector: backend, SessionAffinity: affinity,
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(9376)}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodePort := strconv.Itoa(int(svc.Spec.Ports[0].NodePort))
		t.Run(name, func(t *testing.T) {
			// From the nodes themselves (as hostNetwork pods), to the
			// other node's address.
			for _, c := range [][2]*agentProc{{n1, n2}, {n2, n1}} {
				addr := net.JoinHostPort(c[1].ip, nodePort)
				eventually(t, 30*time.Second, fmt.Sprintf("20 requests from %s to %s", c[0].name, addr), func() error {
					seen := map[string]int{}
					for range 20 {
						got, err := tcpAsk(c[0], "", addr)
						if err != nil {
							return fmt.Errorf("after answers %v: %w", seen, err)
						}
						seen[got]++
					}
					if affinity == corev1.ServiceAffinityClientIP && len(seen) != 1 {
						return fmt.Errorf("with ClientIP affinity, answers %v", seen)
					}
					return nil
				})
			}
			for _, client := range []string{"client-1", "client-2"} {
				for _, n := range []*agentProc{n1, n2} {
					addr := n.ip + " " + nodePort
					loop := fmt.Sprintf(`for i in $(seq 20); do echo hostName | nc -w 2 %s || echo FAIL; done`, addr)
					eventually(t, 30*time.Second, fmt.Sprintf("20 requests from %s to %s", client, addr), func() error {
						out, code := s.minik("", "exec", client, "--", "sh", "-c", loop)
						if code != 0 {
							return fmt.Errorf("exit %d: %s", code, tail(out, 5))
						}
						seen := map[string]int{}
						for _, l := range strings.Fields(out) {
							seen[l]++
						}
						if seen["FAIL"] > 0 {
							return fmt.Errorf("answers %v", seen)
						}
						if affinity == corev1.ServiceAffinityClientIP && len(seen) != 1 {
							return fmt.Errorf("with ClientIP affinity, answers %v", seen)
						}
						return nil
					})
				}
			}
		})
	}
}
