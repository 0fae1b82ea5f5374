package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/pki/pkitest"
)

// certServer serves a test server over TLS as minik's server does:
// users are the client certificates the cluster CA signed, decided by the
// node authorizer.
type certServer struct {
	*testServer
	ca    *pki.Authority
	url   string
	admin *kubernetes.Clientset
}

func newCertServer(t *testing.T) *certServer {
	t.Helper()
	ts := newTestServer(t)
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	ts.cfg.Authenticator = auth.NewAuthenticator(ca.ClientCAPool(), nil)
	withNodeAuthorizer(ts)
	hs := httptest.NewUnstartedServer(ts.Server)
	pkitest.StartTLS(hs, ca.ServerTLSConfig())
	t.Cleanup(hs.Close)
	cs := &certServer{testServer: ts, ca: ca, url: hs.URL}
	cs.admin = cs.clientset(t, "system:admin", []string{auth.GroupMasters}, "")
	return cs
}

// restConfig is a client configuration for a certificate the CA signs
// for user in groups.
func (cs *certServer) restConfig(t *testing.T, user string, groups []string) *rest.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := cs.ca.SignClientCert(user, groups, key.Public(), 0)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &rest.Config{Host: cs.url, QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CertData: certPEM, KeyData: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		CAData: cs.ca.CAPEM(), ServerName: "127.0.0.1",
	}}
}

// clientset is a client of user in groups sending contentType ("" for
// client-go's default, protobuf).
func (cs *certServer) clientset(t *testing.T, user string, groups []string, contentType string) *kubernetes.Clientset {
	t.Helper()
	cfg := cs.restConfig(t, user, groups)
	cfg.ContentType = contentType
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nodeHTTP is an HTTP client holding node's certificate, for bodies no
// typed client would send.
func (cs *certServer) nodeHTTP(t *testing.T, node string) *http.Client {
	t.Helper()
	rt, err := rest.TransportFor(cs.restConfig(t, auth.NodeUserPrefix+node, []string{auth.GroupNodes}))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: rt}
}

// send makes one request and returns its code and, for an error, the
// Status it carries.
func (cs *certServer) send(t *testing.T, c *http.Client, method, path, contentType, body string) (int, metav1.Status) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, cs.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, &st); err != nil || st.Kind != "Status" {
			t.Fatalf("%s %s = %d with body %q, want a Status", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, st
}

// nodeExists reports whether Node name is stored.
func (cs *certServer) nodeExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := cs.admin.CoreV1().Nodes().Get(testContext(t), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// wantForbidden fails t unless code and st are a 403 Forbidden whose
// message names each of names.
func wantForbidden(t *testing.T, code int, st metav1.Status, names ...string) {
	t.Helper()
	if code != http.StatusForbidden || st.Reason != metav1.StatusReasonForbidden {
		t.Fatalf("answer = %d %s %q, want 403 Forbidden", code, st.Reason, st.Message)
	}
	for _, n := range names {
		if !strings.Contains(st.Message, n) {
			t.Errorf("message %q does not name %q", st.Message, n)
		}
	}
}

// A node's create is authorized by the name it stores: a second,
// case-insensitive "Name" key cannot pass another node's Node for its own.
func TestNodeCreatesOnlyItsOwnNode(t *testing.T) {
	tests := []struct {
		name, body, stored string // stored: the Node the body would create
		forbidden          bool
	}{
		{"name then Name", `{"kind":"Node","apiVersion":"v1","metadata":{"name":"victim","Name":"n1"}}`, "victim", true},
		{"Name then name", `{"kind":"Node","apiVersion":"v1","metadata":{"Name":"n1","name":"victim"}}`, "victim", true},
		{"NAME only", `{"kind":"Node","apiVersion":"v1","metadata":{"NAME":"n1","generateName":"victim-"}}`, "", true},
		{"another node's name", `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n2"}}`, "n2", true},
		{"own name", `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1"}}`, "n1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCertServer(t)
			code, st := cs.send(t, cs.nodeHTTP(t, "n1"), http.MethodPost, "/api/v1/nodes", "application/json", tc.body)
			if !tc.forbidden {
				if code != http.StatusCreated {
					t.Fatalf("create = %d %q, want 201", code, st.Message)
				}
				return
			}
			wantForbidden(t, code, st, "n1")
			list, err := cs.admin.CoreV1().Nodes().List(testContext(t), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 0 {
				t.Errorf("after a refused create, Node %q is stored", list.Items[0].Name)
			}
		})
	}
	t.Run("protobuf", func(t *testing.T) {
		cs := newCertServer(t)
		node := cs.clientset(t, auth.NodeUserPrefix+"n1", []string{auth.GroupNodes}, "")
		_, err := node.CoreV1().Nodes().Create(testContext(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "victim"}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("protobuf create of Node victim by n1 = %v, want Forbidden", err)
		}
		if cs.nodeExists(t, "victim") {
			t.Error("Node victim stored after a refused create")
		}
	})
}

// A node registers its own Node without what the server or the control
// plane sets: a podCIDR, node-restricted or role labels, another node's
// hostname label.
func TestNodeCreateRestrictions(t *testing.T) {
	tests := []struct {
		name  string
		node  string
		names []string // what the refusal must name; nil: allowed
	}{
		{"podCIDR", `{"metadata":{"name":"n1"},"spec":{"podCIDR":"10.42.7.0/24","podCIDRs":["10.42.7.0/24"]}}`, []string{"spec.podCIDR"}},
		{"role label", `{"metadata":{"name":"n1","labels":{"node-role.kubernetes.io/control-plane":"true"}}}`, []string{"node-role.kubernetes.io/control-plane"}},
		{"node-restriction label", `{"metadata":{"name":"n1","labels":{"node-restriction.kubernetes.io/pool":"a"}}}`, []string{"node-restriction.kubernetes.io/pool"}},
		{"other kubernetes.io label", `{"metadata":{"name":"n1","labels":{"kubernetes.io/role":"master"}}}`, []string{"kubernetes.io/role"}},
		{"k8s.io label", `{"metadata":{"name":"n1","labels":{"example.k8s.io/x":"y"}}}`, []string{"example.k8s.io/x"}},
		{"another node's hostname", `{"metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n2"}}}`, []string{"kubernetes.io/hostname", "n2"}},
		{"configSource", `{"metadata":{"name":"n1"},"spec":{"configSource":{"configMap":{"name":"c","namespace":"kube-system","kubeletConfigKey":"k"}}}}`, []string{"spec.configSource"}},
		{"kubelet labels and taints", `{"metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1","kubernetes.io/os":"linux",
			"topology.kubernetes.io/zone":"z","node.kubernetes.io/instance-type":"t","example.com/rack":"r1"}},
			"spec":{"taints":[{"key":"dedicated","value":"edge","effect":"NoSchedule"}]}}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCertServer(t)
			body := `{"kind":"Node","apiVersion":"v1",` + strings.TrimPrefix(tc.node, "{")
			code, st := cs.send(t, cs.nodeHTTP(t, "n1"), http.MethodPost, "/api/v1/nodes", "application/json", body)
			if tc.names == nil {
				if code != http.StatusCreated {
					t.Fatalf("create = %d %q, want 201", code, st.Message)
				}
				return
			}
			wantForbidden(t, code, st, tc.names...)
			if cs.nodeExists(t, "n1") {
				t.Error("Node n1 stored after a refused create")
			}
		})
	}
}

// ownNodes stores Node n1, as registered without a podCIDR yet, and Node
// n2, as the admin would.
func (cs *certServer) ownNodes(t *testing.T) {
	t.Helper()
	for _, n := range []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "n2", Labels: map[string]string{"kubernetes.io/hostname": "n2"}},
			Spec: corev1.NodeSpec{PodCIDR: "10.42.2.0/24", PodCIDRs: []string{"10.42.2.0/24"}}},
	} {
		if _, err := cs.admin.CoreV1().Nodes().Create(testContext(t), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A node's updates and patches of Nodes keep to NodeRestriction's rules,
// whatever the write's form.
func TestNodeUpdateRestrictions(t *testing.T) {
	const merge = "application/merge-patch+json"
	tests := []struct {
		name, method, path, contentType, body string
		names                                 []string // what the refusal must name; nil: allowed
	}{
		{"role label", http.MethodPatch, "/api/v1/nodes/n1", merge, `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":"true"}}}`,
			[]string{"node-role.kubernetes.io/control-plane"}},
		{"role label through status", http.MethodPatch, "/api/v1/nodes/n1/status", merge, `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":"true"}}}`,
			[]string{"node-role.kubernetes.io/control-plane"}},
		{"role label by JSON patch", http.MethodPatch, "/api/v1/nodes/n1", "application/json-patch+json",
			`[{"op":"add","path":"/metadata/labels/node-role.kubernetes.io~1master","value":""}]`, []string{"node-role.kubernetes.io/master"}},
		{"role label by PUT", http.MethodPut, "/api/v1/nodes/n1", "application/json",
			`{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1","node-role.kubernetes.io/x":""}}}`,
			[]string{"node-role.kubernetes.io/x"}},
		{"remove hostname label", http.MethodPatch, "/api/v1/nodes/n1", merge, `{"metadata":{"labels":{"kubernetes.io/hostname":null}}}`, nil},
		{"another node's hostname", http.MethodPatch, "/api/v1/nodes/n1", merge, `{"metadata":{"labels":{"kubernetes.io/hostname":"n2"}}}`,
			[]string{"kubernetes.io/hostname", "n2"}},
		{"podCIDR", http.MethodPatch, "/api/v1/nodes/n1", merge, `{"spec":{"podCIDR":"10.42.2.0/24","podCIDRs":["10.42.2.0/24"]}}`,
			[]string{"spec.podCIDR"}},
		{"taints", http.MethodPatch, "/api/v1/nodes/n1", merge, `{"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}`,
			[]string{"spec.taints"}},
		{"taints through status PUT", http.MethodPut, "/api/v1/nodes/n1/status", "application/json",
			`{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1"}},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}`,
			[]string{"spec.taints"}},
		{"rename by patch", http.MethodPatch, "/api/v1/nodes/n1", merge, `{"metadata":{"name":"n2"}}`, []string{"n2"}},
		{"another node", http.MethodPatch, "/api/v1/nodes/n2", merge, `{"metadata":{"labels":{"example.com/x":"y"}}}`, []string{"n2"}},
		{"delete another node", http.MethodDelete, "/api/v1/nodes/n2", "application/json", ``, []string{"n2"}},
		{"own label", http.MethodPatch, "/api/v1/nodes/n1", merge, `{"metadata":{"labels":{"example.com/rack":"r1","topology.kubernetes.io/zone":"z"}}}`, nil},
		{"own status", http.MethodPatch, "/api/v1/nodes/n1/status", merge, `{"status":{"addresses":[{"type":"InternalIP","address":"192.0.2.1"}]}}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCertServer(t)
			cs.ownNodes(t)
			before := cs.nodes(t)
			code, st := cs.send(t, cs.nodeHTTP(t, "n1"), tc.method, tc.path, tc.contentType, tc.body)
			if tc.names == nil {
				if code != http.StatusOK {
					t.Fatalf("%s %s = %d %q, want 200", tc.method, tc.path, code, st.Message)
				}
				return
			}
			wantForbidden(t, code, st, tc.names...)
			if after := cs.nodes(t); after != before {
				t.Errorf("Nodes after a refused write:\n%s\nwant as before:\n%s", after, before)
			}
		})
	}
}

// nodes lists the stored Nodes' names, revisions, labels and specs.
func (cs *certServer) nodes(t *testing.T) string {
	t.Helper()
	list, err := cs.admin.CoreV1().Nodes().List(testContext(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range list.Items {
		spec, _ := json.Marshal(n.Spec)
		labels, _ := json.Marshal(n.Labels)
		b.WriteString(n.Name + " " + n.ResourceVersion + " " + string(labels) + " " + string(spec) + "\n")
	}
	return b.String()
}

// Through pods/status a node writes only the status of its pods: not
// their labels (which would steer another Service's endpoints to them),
// annotations, finalizers, owner references or spec.
func TestNodePodStatusWritesOnlyStatus(t *testing.T) {
	const merge = "application/merge-patch+json"
	tests := []struct {
		name, contentType, body string
		field                   string // what the refusal must name; "": allowed
	}{
		{"labels", merge, `{"metadata":{"labels":{"app":"other-service"}}}`, "metadata.labels"},
		{"labels by strategic merge", "application/strategic-merge-patch+json", `{"metadata":{"labels":{"extra":"x"}}}`, "metadata.labels"},
		{"annotations", merge, `{"metadata":{"annotations":{"a":"b"}}}`, "metadata.annotations"},
		{"finalizers", merge, `{"metadata":{"finalizers":["example.com/hold"]}}`, "metadata.finalizers"},
		{"ownerReferences", merge, `{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ReplicationController","name":"rc","uid":"u1"}]}}`, "metadata.ownerReferences"},
		{"spec", merge, `{"spec":{"activeDeadlineSeconds":5}}`, "spec"},
		{"status", merge, `{"status":{"phase":"Running","podIP":"10.42.1.5"}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCertServer(t)
			pod := testPod("p", map[string]string{"app": "p"})
			pod.Spec.NodeName = "n1"
			if _, err := cs.admin.CoreV1().Pods("default").Create(testContext(t), pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			code, st := cs.send(t, cs.nodeHTTP(t, "n1"), http.MethodPatch, "/api/v1/namespaces/default/pods/p/status", tc.contentType, tc.body)
			if tc.field == "" {
				if code != http.StatusOK {
					t.Fatalf("patch = %d %q, want 200", code, st.Message)
				}
				return
			}
			wantForbidden(t, code, st, tc.field, "pods/status")
			got, err := cs.admin.CoreV1().Pods("default").Get(testContext(t), "p", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Labels) != 1 || len(got.Annotations) != 0 || len(got.Finalizers) != 0 || len(got.OwnerReferences) != 0 || got.Spec.ActiveDeadlineSeconds != nil {
				t.Errorf("pod after a refused write: labels %v annotations %v finalizers %v owners %v; want as created",
					got.Labels, got.Annotations, got.Finalizers, got.OwnerReferences)
			}
		})
	}
}
