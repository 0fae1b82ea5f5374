package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func TestListSelectors(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	for i, tier := range []string{"web", "web", "db"} {
		p := testPod(fmt.Sprintf("p%d", i), map[string]string{"tier": tier})
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	if _, err := pods.Patch(ctx, "p1", types.MergePatchType, []byte(`{"spec":{"nodeName":"n1"}}`), metav1.PatchOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("Patch of spec.nodeName = %v, want Invalid (set through binding only)", err)
	}
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p1"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("second Bind = %v, want Conflict", err)
	}
	cases := []struct {
		name           string
		labels, fields string
		want           []string
	}{
		{"all", "", "", []string{"p0", "p1", "p2"}},
		{"equality", "tier=web", "", []string{"p0", "p1"}},
		{"set", "tier in (db)", "", []string{"p2"}},
		{"notin", "tier notin (db)", "", []string{"p0", "p1"}},
		{"exists", "tier", "", []string{"p0", "p1", "p2"}},
		{"name", "", "metadata.name=p2", []string{"p2"}},
		{"node", "", "spec.nodeName=n1", []string{"p1"}},
		{"unbound", "", "spec.nodeName=", []string{"p0", "p2"}},
		{"phase", "tier=web", "status.phase=Pending", []string{"p0", "p1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: tc.labels, FieldSelector: tc.fields})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if got := names(list.Items); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("List(%q, %q) = %v, want %v", tc.labels, tc.fields, got, tc.want)
			}
		})
	}
	_, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.bogus=1"})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("List with unsupported field = %v, want BadRequest", err)
	}
	_, err = pods.List(ctx, metav1.ListOptions{LabelSelector: "a in (("})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("List with bad label selector = %v, want BadRequest", err)
	}
}

func TestListPagesAndPastRevisions(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	for i := 0; i < 5; i++ {
		if _, err := pods.Create(ctx, testPod(fmt.Sprintf("p%d", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	first, err := pods.List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	// A write between pages must not show in later pages.
	if _, err := pods.Create(ctx, testPod("p9", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got := names(first.Items)
	cont := first.Continue
	for cont != "" {
		page, err := pods.List(ctx, metav1.ListOptions{Limit: 2, Continue: cont})
		if err != nil {
			t.Fatalf("List(continue): %v", err)
		}
		if page.ResourceVersion != first.ResourceVersion {
			t.Errorf("page resourceVersion = %s, want %s", page.ResourceVersion, first.ResourceVersion)
		}
		got = append(got, names(page.Items)...)
		cont = page.Continue
	}
	if fmt.Sprint(got) != "[p0 p1 p2 p3 p4]" {
		t.Errorf("paged list = %v, want [p0 p1 p2 p3 p4]", got)
	}
	exact, err := pods.List(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err != nil {
		t.Fatalf("List(exact): %v", err)
	}
	if len(exact.Items) != 5 {
		t.Errorf("List at revision %s = %d items, want 5", first.ResourceVersion, len(exact.Items))
	}
}

func TestDeleteSemantics(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	for _, n := range []string{"unbound", "bound"} {
		if _, err := pods.Create(ctx, testPod(n, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if err := pods.Delete(ctx, "unbound", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete(unbound): %v", err)
	}
	if _, err := pods.Get(ctx, "unbound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get after deleting an unbound pod = %v, want NotFound", err)
	}
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete(bound): %v", err)
	}
	p, err := pods.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get after deleting a bound pod: %v (want it kept until the node confirms)", err)
	}
	if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
		t.Errorf("bound pod deletionTimestamp %v grace %v, want set and 30", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
	}
	if p.Generation != 2 {
		t.Errorf("bound pod generation after a graceful delete = %d, want 2", p.Generation)
	}
	ten := int64(10)
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: &ten}); err != nil {
		t.Fatalf("Delete(grace 10): %v", err)
	}
	if p, err = pods.Get(ctx, "bound", metav1.GetOptions{}); err != nil || p.Generation != 2 || *p.DeletionGracePeriodSeconds != 10 {
		t.Errorf("after shortening the grace period: %v; want generation 2 and grace 10", err)
	}
	zero := int64(0)
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatalf("Delete(grace 0): %v", err)
	}
	if _, err := pods.Get(ctx, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get after the node's delete = %v, want NotFound", err)
	}
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Delete of a missing pod = %v, want NotFound", err)
	}
	err = ts.client.CoreV1().Namespaces().Delete(ctx, "default", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("Delete(namespace default) = %v, want Forbidden", err)
	}
}

func TestNamespaceDeletionRemovesContent(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	nss := ts.client.CoreV1().Namespaces()
	if _, err := nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create namespace: %v", err)
	}
	if _, err := ts.client.CoreV1().Pods("team").Create(ctx, testPod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create pod: %v", err)
	}
	if err := nss.Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete namespace: %v", err)
	}
	ns, err := nss.Get(ctx, "team", metav1.GetOptions{})
	if err == nil && ns.Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("namespace phase = %q, want Terminating", ns.Status.Phase)
	}
	if _, err := ts.client.CoreV1().Pods("team").Create(ctx, testPod("q", nil), metav1.CreateOptions{}); err == nil {
		t.Errorf("Create in a terminating namespace succeeded, want Forbidden or NotFound")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := nss.Get(ctx, "team", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace still there after 10s (err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	list, err := ts.client.CoreV1().Pods("team").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("pods left in deleted namespace: %d (err %v)", len(list.Items), err)
	}
}

func TestScaleSubresource(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	rcs := ts.client.CoreV1().ReplicationControllers("default")
	one := int32(1)
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &one,
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       testPod("", nil).Spec,
			},
		},
	}
	if _, err := rcs.Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	sc, err := rcs.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("GetScale: %v", err)
	}
	if sc.Spec.Replicas != 1 || sc.Status.Selector != "app=web" {
		t.Errorf("GetScale = replicas %d selector %q, want 1 and app=web", sc.Spec.Replicas, sc.Status.Selector)
	}
	sc.Spec.Replicas = 4
	if _, err := rcs.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("UpdateScale: %v", err)
	}
	got, _ := rcs.Get(ctx, "web", metav1.GetOptions{})
	if *got.Spec.Replicas != 4 || got.Generation != 2 {
		t.Errorf("after UpdateScale replicas %d generation %d, want 4 and 2", *got.Spec.Replicas, got.Generation)
	}
	if _, err := rcs.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("UpdateScale with a stale scale = %v, want Conflict", err)
	}
}

func TestServiceClusterIPs(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	svcs := ts.client.CoreV1().Services("default")
	svc := func(name, ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
			ClusterIP: ip, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80}},
		}}
	}
	a, err := svcs.Create(ctx, svc("a", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if a.Spec.ClusterIP == "" || a.Spec.ClusterIP == "10.43.0.1" || a.Spec.ClusterIP == "10.43.0.10" {
		t.Errorf("allocated clusterIP %q, want a free non-reserved address", a.Spec.ClusterIP)
	}
	if _, err := svcs.Create(ctx, svc("b", a.Spec.ClusterIP), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("Create with a taken clusterIP = %v, want Invalid", err)
	}
	if _, err := svcs.Create(ctx, svc("c", "10.99.0.5"), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("Create with an out-of-range clusterIP = %v, want Invalid", err)
	}
	if err := svcs.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := svcs.Create(ctx, svc("d", a.Spec.ClusterIP), metav1.CreateOptions{}); err != nil {
		t.Errorf("Create with a released clusterIP = %v, want success", err)
	}
	h, err := svcs.Create(ctx, svc("h", "None"), metav1.CreateOptions{})
	if err != nil || h.Spec.ClusterIP != "None" {
		t.Errorf("headless Create = %v, %v; want clusterIP None", h, err)
	}
}

func TestTableOutput(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod("web", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	req, _ := http.NewRequest("GET", ts.url+"/api/v1/namespaces/default/pods", nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var tbl metav1.Table
	if err := json.Unmarshal(data, &tbl); err != nil {
		t.Fatalf("decoding table: %v", err)
	}
	if tbl.Kind != "Table" || len(tbl.Rows) != 1 || len(tbl.ColumnDefinitions) == 0 {
		t.Fatalf("table = kind %q rows %d columns %d, want Table with 1 row", tbl.Kind, len(tbl.Rows), len(tbl.ColumnDefinitions))
	}
	if tbl.ColumnDefinitions[0].Name != "Name" || tbl.Rows[0].Cells[0] != "web" {
		t.Errorf("first column %q cell %v, want Name/web", tbl.ColumnDefinitions[0].Name, tbl.Rows[0].Cells[0])
	}
}

func TestDeletePropagationFinalizers(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pods := ts.client.CoreV1().Pods("default")
	cases := []struct {
		name      string
		policy    metav1.DeletionPropagation
		finalizer string // "" = deleted at once
	}{
		{"background", metav1.DeletePropagationBackground, ""},
		{"orphan", metav1.DeletePropagationOrphan, metav1.FinalizerOrphanDependents},
		{"foreground", metav1.DeletePropagationForeground, metav1.FinalizerDeleteDependents},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pods.Create(ctx, testPod(tc.name, nil), metav1.CreateOptions{}); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if err := pods.Delete(ctx, tc.name, metav1.DeleteOptions{PropagationPolicy: &tc.policy}); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			p, err := pods.Get(ctx, tc.name, metav1.GetOptions{})
			if tc.finalizer == "" {
				if !apierrors.IsNotFound(err) {
					t.Errorf("Get after %s delete = %v, want NotFound", tc.policy, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if p.DeletionTimestamp == nil || len(p.Finalizers) != 1 || p.Finalizers[0] != tc.finalizer {
				t.Errorf("after %s delete: deletionTimestamp %v finalizers %v, want set and [%s]", tc.policy, p.DeletionTimestamp, p.Finalizers, tc.finalizer)
			}
			// Removing the finalizer (the garbage collector's job) lets it go.
			p.Finalizers = nil
			if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			if _, err := pods.Get(ctx, tc.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Get after the finalizer is removed = %v, want NotFound", err)
			}
		})
	}
}

func TestServiceNodePorts(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	svcs := ts.client.CoreV1().Services("default")
	svc := func(name string, typ corev1.ServiceType, nodePort int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
			Type: typ, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: nodePort}},
		}}
	}
	a, err := svcs.Create(ctx, svc("a", corev1.ServiceTypeNodePort, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	np := a.Spec.Ports[0].NodePort
	if np < 30000 || np > 32767 {
		t.Fatalf("allocated nodePort %d, want one in 30000-32767", np)
	}
	if _, err := svcs.Create(ctx, svc("b", corev1.ServiceTypeNodePort, np), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("Create with a taken nodePort = %v, want Invalid", err)
	}
	if _, err := svcs.Create(ctx, svc("c", corev1.ServiceTypeNodePort, 80), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("Create with an out-of-range nodePort = %v, want Invalid", err)
	}
	lb, err := svcs.Create(ctx, svc("lb", corev1.ServiceTypeLoadBalancer, 31000), metav1.CreateOptions{})
	if err != nil || lb.Spec.Ports[0].NodePort != 31000 {
		t.Fatalf("Create LoadBalancer with nodePort 31000 = %v, %v", lb, err)
	}
	// allocateLoadBalancerNodePorts=false: only a named node port is held.
	noPorts := svc("lb-none", corev1.ServiceTypeLoadBalancer, 0)
	noPorts.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
	noPorts.Spec.Ports = append(noPorts.Spec.Ports, corev1.ServicePort{Name: "b", Port: 81, NodePort: 31001})
	noPorts.Spec.Ports[0].Name = "a"
	got, err := svcs.Create(ctx, noPorts, metav1.CreateOptions{})
	if err != nil || got.Spec.Ports[0].NodePort != 0 || got.Spec.Ports[1].NodePort != 31001 {
		t.Fatalf("Create LoadBalancer without node ports = %v, %v; want node ports [0 31001]", got, err)
	}
	if err := svcs.Delete(ctx, "lb-none", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := svcs.Create(ctx, svc("f", corev1.ServiceTypeNodePort, 31001), metav1.CreateOptions{}); err != nil {
		t.Errorf("Create with the node port a deleted LoadBalancer named = %v, want success", err)
	}
	// Switching a ClusterIP service to NodePort allocates one; back frees it.
	c, err := svcs.Create(ctx, svc("d", corev1.ServiceTypeClusterIP, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	c.Spec.Type = corev1.ServiceTypeNodePort
	c, err = svcs.Update(ctx, c, metav1.UpdateOptions{})
	if err != nil || c.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("Update to NodePort = %v, %v; want a node port", c, err)
	}
	if err := svcs.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := svcs.Create(ctx, svc("e", corev1.ServiceTypeNodePort, np), metav1.CreateOptions{}); err != nil {
		t.Errorf("Create with a released nodePort = %v, want success", err)
	}
}

// TestServiceNodePortsDistinct fills a three-port range with one service
// of three ports, many times over: a port picked for one of them is never
// picked again for another, nor one that a later port names.
func TestServiceNodePortsDistinct(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.NodePortRange = "30000-30002" })
	ctx := testContext(t)
	svcs := ts.client.CoreV1().Services("default")
	for round := range 20 {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "s"},
			Ports: []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 81}, {Name: "c", Port: 82}},
		}}
		if round%2 == 1 {
			svc.Spec.Ports[2].NodePort = 30001 // named by the last port
		}
		got, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("round %d: Create: %v", round, err)
		}
		seen := map[int32]string{}
		for _, p := range got.Spec.Ports {
			if other, dup := seen[p.NodePort]; dup {
				t.Fatalf("round %d: ports %s and %s both got node port %d", round, other, p.Name, p.NodePort)
			}
			seen[p.NodePort] = p.Name
		}
		if err := svcs.Delete(ctx, "s", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("round %d: Delete: %v", round, err)
		}
	}
}

// TestListRemainingItemCount: a page that has a next one says how many
// objects follow it (not when selectors filter, as upstream), in JSON and
// in protobuf; a continue token whose revision was compacted gets 410
// with a token that goes on from the same key at the current revision.
func TestListRemainingItemCount(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	pb, _ := protobufClient(t, ts)
	for i := 0; i < 5; i++ {
		if _, err := ts.client.CoreV1().Pods("default").Create(ctx, testPod(fmt.Sprintf("p%d", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	for name, cs := range map[string]kubernetes.Interface{"json": ts.client, "protobuf": pb} {
		pods := cs.CoreV1().Pods("default")
		var remaining []string
		cont := ""
		for {
			page, err := pods.List(ctx, metav1.ListOptions{Limit: 2, Continue: cont})
			if err != nil {
				t.Fatalf("%s: List: %v", name, err)
			}
			if n := page.RemainingItemCount; n != nil {
				remaining = append(remaining, fmt.Sprint(*n))
			} else {
				remaining = append(remaining, "nil")
			}
			if cont = page.Continue; cont == "" {
				break
			}
		}
		if got := fmt.Sprint(remaining); got != "[3 1 nil]" {
			t.Errorf("%s: remainingItemCount of the pages = %s, want [3 1 nil]", name, got)
		}
		filtered, err := pods.List(ctx, metav1.ListOptions{Limit: 2, LabelSelector: "app!=none"})
		if err != nil {
			t.Fatalf("%s: List(selector): %v", name, err)
		}
		if filtered.Continue == "" || filtered.RemainingItemCount != nil {
			t.Errorf("%s: filtered page: continue %q, remainingItemCount %v; want a token and no count", name, filtered.Continue, filtered.RemainingItemCount)
		}
	}

	pods := ts.client.CoreV1().Pods("default")
	first, err := pods.List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if _, err := pods.Create(ctx, testPod("p9", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	rev, _ := ts.store.CurrentRevision(ctx)
	if err := ts.store.Compact(ctx, rev); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	_, err = pods.List(ctx, metav1.ListOptions{Limit: 2, Continue: first.Continue})
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Code != http.StatusGone || st.Status().ListMeta.Continue == "" {
		t.Fatalf("List with a compacted continue token = %v, want 410 with a continue token", err)
	}
	rest, err := pods.List(ctx, metav1.ListOptions{Limit: 2, Continue: st.Status().ListMeta.Continue})
	if err != nil {
		t.Fatalf("List with the inconsistent continue token: %v", err)
	}
	if got := fmt.Sprint(names(rest.Items)); got != "[p2 p3]" || rest.ResourceVersion == first.ResourceVersion {
		t.Errorf("inconsistent page = %s at %s, want [p2 p3] at a revision after %s", got, rest.ResourceVersion, first.ResourceVersion)
	}
	if rest.RemainingItemCount == nil || *rest.RemainingItemCount != 2 {
		t.Errorf("inconsistent page remainingItemCount = %v, want 2 (p4, p9)", rest.RemainingItemCount)
	}
}
