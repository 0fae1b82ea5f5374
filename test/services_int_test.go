//go:build integration

package test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// httpRC serves each pod's own name on port 8080.
const httpRC = `apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 3
  selector: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        resources: {requests: {cpu: 10m, memory: 8Mi}}
`

// webSvc exposes the pods by the container port's name, on a NodePort,
// and headless for DNS.
const webSvc = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
`

// stickySvc is web with ClientIP session affinity; lbSvc is web as a
// LoadBalancer on port 8090, served at every Ready node's address.
const stickySvc = `apiVersion: v1
kind: Service
metadata: {name: web-sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports: [{name: http, port: 80, targetPort: http}]
`

const lbSvc = `apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 8090, targetPort: http}]
`

// webPods returns the names of the RC's running pods not being deleted,
// and how many there are per node.
func webPods(t *testing.T, cs *kubernetes.Clientset) ([]string, map[string]int) {
	t.Helper()
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	by := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			names = append(names, p.Name)
			by[p.Spec.NodeName]++
		}
	}
	sort.Strings(names)
	return names, by
}

// backends sends n requests to addr from node a and returns the distinct
// answers (pod names), sorted.
func backends(a *agentProc, addr string, n int) ([]string, error) {
	seen := map[string]bool{}
	for range n {
		body, err := a.httpGet(addr, "/")
		if err != nil {
			return nil, err
		}
		seen[strings.TrimSpace(body)] = true
	}
	out := make([]string, 0, len(seen))
	for b := range seen {
		out = append(out, b)
	}
	sort.Strings(out)
	return out, nil
}

// expectBackends waits until n requests to addr from a reach exactly want.
func expectBackends(t *testing.T, a *agentProc, addr string, n int, want []string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, timeout, fmt.Sprintf("%d requests to %s from %s reach %v", n, addr, a.name, want), func() error {
		got, err := backends(a, addr, n)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("reached %v", got)
		}
		return nil
	})
	return time.Since(start)
}

// natRules returns node a's nat table.
func natRules(t *testing.T, a *agentProc) string {
	t.Helper()
	out, err := a.inNode("iptables-save", "-t", "nat")
	if err != nil {
		t.Fatalf("iptables-save in %s: %v\n%s", a.name, err, out)
	}
	return out
}

// TestIntegrationServices runs a NodePort Service over pods on two nodes
// and checks the ClusterIP, the NodePort and service DNS from the nodes and
// from a pod, through scaling and the Service's deletion.
func TestIntegrationServices(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1, "--heartbeat-interval", "1s")
	n2 := startAgent(t, s, ip, 2, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	waitNodeReady(t, cs, n2.name)
	ctx := context.Background()
	// Service IPs without rules must not leave the node namespaces (the
	// default route leads to the host): send them to lo, where they die.
	for _, n := range []*agentProc{n1, n2} {
		if out, err := n.inNode("ip", "route", "add", "10.43.0.0/16", "dev", "lo"); err != nil {
			t.Fatalf("service CIDR route in %s: %v\n%s", n.name, err, out)
		}
	}

	s.mustMinik(httpRC, "apply", "-f", "-")
	s.mustMinik(webSvc, "apply", "-f", "-")
	s.mustMinik(stickySvc, "apply", "-f", "-")
	s.mustMinik(lbSvc, "apply", "-f", "-")
	var pods []string
	eventually(t, 120*time.Second, "3 web pods over both nodes", func() error {
		names, by := webPods(t, cs)
		if len(names) != 3 || by[n1.name] == 0 || by[n2.name] == 0 {
			return fmt.Errorf("running per node %v", by)
		}
		pods = names
		return nil
	})
	svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	nodePort := strconv.Itoa(int(svc.Spec.Ports[0].NodePort))
	t.Logf("service web: %s, nodePort %s, pods %v", vip, nodePort, pods)

	for _, n := range []*agentProc{n1, n2} {
		eventually(t, 30*time.Second, "rules of default/web on "+n.name, func() error {
			if !strings.Contains(natRules(t, n), "default/web:http cluster IP") {
				return fmt.Errorf("no cluster IP rule")
			}
			return nil
		})
	}

	// The ClusterIP from both nodes: 60 requests reach all 3 pods.
	took := expectBackends(t, n2, vip, 60, pods, 60*time.Second)
	t.Logf("cluster IP served all backends from %s after %v", n2.name, took.Round(time.Millisecond))
	expectBackends(t, n1, vip, 60, pods, 10*time.Second)

	// The NodePort on both node addresses and on 127.0.0.1.
	for _, target := range []struct {
		from *agentProc
		addr string
	}{
		{n1, net.JoinHostPort(n1.ip, nodePort)},
		{n1, net.JoinHostPort(n2.ip, nodePort)},
		{n2, net.JoinHostPort(n1.ip, nodePort)},
		{n1, net.JoinHostPort("127.0.0.1", nodePort)},
		{n2, net.JoinHostPort("127.0.0.1", nodePort)},
	} {
		expectBackends(t, target.from, target.addr, 30, pods, 10*time.Second)
	}

	checkSessionAffinity(t, cs, n1, n2, pods)
	checkLoadBalancer(t, cs, n1, n2, pods)

	// From inside a pod, by DNS name: resolv.conf, then 60 requests.
	client := pods[0]
	resolv := s.mustMinik("", "exec", client, "--", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver 10.43.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local", "options ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("pod resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	// The host's static busybox cannot use glibc's resolver (its wget
	// crashes), so the pod resolves with nslookup, which asks
	// resolv.conf's server, and fetches with nc.
	loop := `set -e
nslookup web.default.svc.cluster.local > /tmp/ns.out || { cat /tmp/ns.out; exit 1; }
ip=$(awk '/^Address/ {a=$NF} END {print a}' /tmp/ns.out)
echo "IP $ip"
for i in $(seq 60); do printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $ip 80 | tail -n 1 | grep . || echo FAIL; done`
	eventually(t, 30*time.Second, "60 requests by DNS name from a pod reach all 3 pods", func() error {
		out, code := s.minik("", "exec", client, "--", "sh", "-c", loop)
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, tail(out, 5))
		}
		if !strings.Contains(out, "IP "+svc.Spec.ClusterIP+"\n") {
			return fmt.Errorf("web.default.svc.cluster.local did not resolve to %s: %s", svc.Spec.ClusterIP, tail(out, 62))
		}
		seen := map[string]bool{}
		for _, l := range strings.Fields(out)[2:] {
			seen[l] = true
		}
		if len(seen) != 3 || seen["FAIL"] {
			return fmt.Errorf("answers %v", seen)
		}
		return nil
	})
	checkDNS(t, s, cs, client)
	checkPodToPod(t, s, cs, client)
	checkAgentRestart(t, n2, vip)

	// Scale to 1: only the remaining pod answers, soon.
	scaled := time.Now()
	s.mustMinik("", "scale", "rc", "web", "--replicas=1")
	var left []string
	eventually(t, 60*time.Second, "1 web pod left", func() error {
		names, _ := webPods(t, cs)
		if len(names) != 1 {
			return fmt.Errorf("running %v", names)
		}
		left = names
		return nil
	})
	expectBackends(t, n2, vip, 20, left, 15*time.Second)
	t.Logf("after scaling to 1, traffic reached only %v %v after the scale command", left, time.Since(scaled).Round(time.Millisecond))

	// Delete the Service: the VIP stops answering and its chains go.
	s.mustMinik("", "delete", "service", "web")
	eventually(t, 15*time.Second, "the deleted service's VIP stops answering", func() error {
		if _, err := n2.httpGet(vip, "/"); err == nil {
			return fmt.Errorf("%s still answers", vip)
		}
		return nil
	})
	for _, n := range []*agentProc{n1, n2} {
		eventually(t, 10*time.Second, "rules of default/web gone on "+n.name, func() error {
			if rules := natRules(t, n); strings.Contains(rules, "default/web:http") {
				return fmt.Errorf("rules left:\n%s", grepLines(rules, "default/web:http"))
			}
			return nil
		})
	}

	// minik agent --cleanup removes every chain and route agents made.
	n2.kill()
	out, err := n2.inNode(s.bin, "agent", "--cleanup")
	if err != nil {
		t.Fatalf("agent --cleanup: %v\n%s", err, out)
	}
	for _, table := range []string{"nat", "filter"} {
		out, err := n2.inNode("iptables-save", "-t", table)
		if err != nil || strings.Contains(out, "MINIK-") {
			t.Errorf("after --cleanup, %s table (err %v):\n%s", table, err, grepLines(out, "MINIK-"))
		}
	}
	if out, _ := n2.inNode("ip", "route", "show", "proto", "211"); strings.TrimSpace(out) != "" {
		t.Errorf("after --cleanup, pod routes left:\n%s", out)
	}
}

// checkSessionAffinity sends 30 requests from each node to web-sticky,
// which has ClientIP affinity: each node (one client IP) reaches one pod
// only, while web, without affinity, still spreads over all pods.
func checkSessionAffinity(t *testing.T, cs *kubernetes.Clientset, n1, n2 *agentProc, pods []string) {
	t.Helper()
	svc, err := cs.CoreV1().Services("default").Get(context.Background(), "web-sticky", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	for _, n := range []*agentProc{n1, n2} {
		var got []string
		eventually(t, 30*time.Second, "web-sticky answers from "+n.name, func() (err error) {
			got, err = backends(n, vip, 30)
			return err
		})
		if len(got) != 1 {
			t.Errorf("30 requests from %s to web-sticky (ClientIP affinity) reached %v, want one pod", n.name, got)
		}
		t.Logf("30 requests from %s to web-sticky reached only %v", n.name, got)
	}
	web, err := cs.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectBackends(t, n2, net.JoinHostPort(web.Spec.ClusterIP, "80"), 30, pods, 10*time.Second)
}

// checkLoadBalancer waits until web-lb's status lists both nodes' IPs and
// sends requests to nodeIP:8090 on both nodes, from both nodes.
func checkLoadBalancer(t *testing.T, cs *kubernetes.Clientset, n1, n2 *agentProc, pods []string) {
	t.Helper()
	want := []string{n1.ip, n2.ip}
	sort.Strings(want)
	eventually(t, 30*time.Second, fmt.Sprintf("web-lb ingress %v", want), func() error {
		svc, err := cs.CoreV1().Services("default").Get(context.Background(), "web-lb", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var got []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			got = append(got, in.IP)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("ingress %v", got)
		}
		return nil
	})
	for _, target := range []struct {
		from *agentProc
		addr string
	}{
		{n1, net.JoinHostPort(n2.ip, "8090")},
		{n2, net.JoinHostPort(n1.ip, "8090")},
		{n1, net.JoinHostPort(n1.ip, "8090")},
	} {
		expectBackends(t, target.from, target.addr, 30, pods, 30*time.Second)
	}

	// Back to ClusterIP: the ingress goes, and so do the rules for it.
	if _, err := cs.CoreV1().Services("default").Patch(context.Background(), "web-lb", types.MergePatchType,
		[]byte(`{"spec":{"type":"ClusterIP"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("web-lb to ClusterIP: %v", err)
	}
	eventually(t, 30*time.Second, "web-lb ingress cleared and "+n2.ip+":8090 closed", func() error {
		svc, err := cs.CoreV1().Services("default").Get(context.Background(), "web-lb", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(svc.Status.LoadBalancer.Ingress) != 0 {
			return fmt.Errorf("ingress %v", svc.Status.LoadBalancer.Ingress)
		}
		if _, err := n1.httpGet(net.JoinHostPort(n2.ip, "8090"), "/"); err == nil {
			return fmt.Errorf("%s:8090 still answers", n2.ip)
		}
		return nil
	})
}

// checkDNS looks up the SRV record of the named port and the headless
// service from inside pod.
func checkDNS(t *testing.T, s *serverProc, cs *kubernetes.Clientset, pod string) {
	t.Helper()
	out, code := s.minik("", "exec", pod, "--", "sh", "-c", "nslookup -type=SRV _http._tcp.web.default.svc.cluster.local")
	if code != 0 || !strings.Contains(out, "80 web.default.svc.cluster.local") {
		t.Errorf("SRV _http._tcp.web: exit %d:\n%s", code, out)
	}
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	out, code = s.minik("", "exec", pod, "--", "sh", "-c", "nslookup web-headless.default.svc.cluster.local")
	for _, p := range list.Items {
		if !strings.Contains(out, "Address: "+p.Status.PodIP+"\n") {
			t.Errorf("headless web-headless lacks pod %s (%s): exit %d:\n%s", p.Name, p.Status.PodIP, code, out)
		}
	}
	out, code = s.minik("", "exec", pod, "--", "sh", "-c", "nslookup nope.default.svc.cluster.local")
	if code == 0 || !strings.Contains(strings.ToUpper(out), "NXDOMAIN") {
		t.Errorf("unknown service: exit %d, want NXDOMAIN:\n%s", code, out)
	}
}

// checkPodToPod fetches every other pod's page by its pod IP from inside
// pod, across nodes (host-gw routes).
func checkPodToPod(t *testing.T, s *serverProc, cs *kubernetes.Clientset, pod string) {
	t.Helper()
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		cmd := fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s 8080 | tail -n 1`, p.Status.PodIP)
		if out, code := s.minik("", "exec", pod, "--", "sh", "-c", cmd); code != 0 || strings.TrimSpace(out) != p.Name {
			t.Errorf("from pod %s to pod %s at %s (node %s): exit %d, %q", pod, p.Name, p.Status.PodIP, p.Spec.NodeName, code, out)
		}
	}
}

// checkAgentRestart restarts node a's agent while requests from a's
// namespace to vip keep going: none may fail.
func checkAgentRestart(t *testing.T, a *agentProc, vip string) {
	t.Helper()
	var ok, failed atomic.Int64
	var lastErr atomic.Value
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := a.httpGet(vip, "/"); err != nil {
				failed.Add(1)
				lastErr.Store(err.Error())
			} else {
				ok.Add(1)
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	a.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- a.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("agent %s did not exit within 30s of SIGTERM", a.name)
	}
	time.Sleep(time.Second)
	a.start()
	time.Sleep(4 * time.Second) // the new agent's session and first sync
	close(stop)
	<-done
	t.Logf("agent %s restarted: %d requests to %s answered, %d failed", a.name, ok.Load(), vip, failed.Load())
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Errorf("requests failed across the agent restart: %d of %d (last: %v)", failed.Load(), failed.Load()+ok.Load(), lastErr.Load())
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
