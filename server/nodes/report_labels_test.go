package nodes_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/nodes"
)

// report sends node's report with labels and returns the code of its
// result.
func (e *env) report(c api.NodeClient, labels map[string]string) codes.Code {
	e.t.Helper()
	resp, err := c.UpdateStatus(ctxT(e.t), &api.StatusUpdate{Node: &api.NodeReport{Labels: labels}})
	if err != nil {
		e.t.Fatalf("UpdateStatus(node report) = %v", err)
	}
	return codes.Code(resp.GetNode().GetCode())
}

// A node's report is written as the node, under the rules of what a node
// may write to its Node: it cannot give itself a role label, another
// node's hostname or a podCIDR. The service sets the podCIDR it allocated
// and the server's own node's roles.
func TestNodeReportLabels(t *testing.T) {
	roles := map[string]string{"node-role.kubernetes.io/control-plane": "true"}
	e := newEnv(t, envOptions{configure: func(c *nodes.Config) {
		c.ServerNode, c.ServerNodeLabels = "srv", roles
	}})
	c, cfg := e.register("n1")
	refused := []map[string]string{
		{"kubernetes.io/hostname": "n1", "node-role.kubernetes.io/control-plane": "true"},
		{"kubernetes.io/hostname": "srv"},
	}
	for _, labels := range refused {
		if code := e.report(c, labels); code != codes.PermissionDenied {
			t.Errorf("report of labels %v = code %v, want PermissionDenied", labels, code)
		}
		if _, err := e.admin.Nodes().Get(ctxT(t), "n1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Node n1 after a refused first report: Get = %v, want NotFound", err)
		}
	}
	if code := e.report(c, map[string]string{"kubernetes.io/hostname": "n1"}); code != codes.OK {
		t.Fatalf("report of n1's own labels = code %v, want OK", code)
	}
	for _, labels := range refused {
		if code := e.report(c, labels); code != codes.PermissionDenied {
			t.Errorf("report of labels %v on an existing Node = code %v, want PermissionDenied", labels, code)
		}
	}
	n, err := e.admin.Nodes().Get(ctxT(t), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.PodCIDR != cfg.PodCidr || len(n.Labels) != 1 || n.Labels["kubernetes.io/hostname"] != "n1" {
		t.Errorf("Node n1: podCIDR %q labels %v; want podCIDR %q and only its hostname label", n.Spec.PodCIDR, n.Labels, cfg.PodCidr)
	}

	srv, srvCfg := e.register("srv")
	if code := e.report(srv, map[string]string{"kubernetes.io/hostname": "srv"}); code != codes.OK {
		t.Fatalf("report of srv = code %v, want OK", code)
	}
	n, err = e.admin.Nodes().Get(ctxT(t), "srv", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.PodCIDR != srvCfg.PodCidr || n.Labels["node-role.kubernetes.io/control-plane"] != "true" || !ready(n) {
		t.Errorf("Node srv: podCIDR %q labels %v ready %v; want podCIDR %q, the server's roles, Ready", n.Spec.PodCIDR, n.Labels, ready(n), srvCfg.PodCidr)
	}
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
