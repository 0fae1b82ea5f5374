package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/pki/pkitest"
)

// nodeClients serves ts over TLS with the cluster's authentication and
// node rules, and returns a client holding a certificate for node and an
// admin client (by token).
func nodeClients(t *testing.T, ts *testServer, node string) (nodeCS, adminCS kubernetes.Interface) {
	t.Helper()
	ca, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "localhost", BindAddress: "127.0.0.1"})
	if err != nil {
		t.Fatalf("pki: %v", err)
	}
	ts.cfg.Authenticator = auth.NewAuthenticator(ca.ClientCAPool(), map[string]auth.User{"admin-token": auth.AdminUser})
	ts.cfg.Authorizer = &auth.Authorizer{Pods: auth.PodNodeFunc(ts.PodNode), NodePods: auth.NodePodsFunc(ts.NodePods)}
	srv := httptest.NewUnstartedServer(ts.Server)
	pkitest.StartTLS(srv, ca.ServerTLSConfig())
	t.Cleanup(srv.Close)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignClientCert(auth.NodeUserPrefix+node, []string{auth.GroupNodes}, key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	nodeCS, err = kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CertData: certPEM, KeyData: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), CAData: ca.CAPEM(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	adminCS, err = kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1, BearerToken: "admin-token",
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CAPEM()}})
	if err != nil {
		t.Fatal(err)
	}
	return nodeCS, adminCS
}

// TestNodeReadsOnlyItsPodsSecrets gets Secrets and ConfigMaps with a node
// certificate: those a pod bound to the node uses, and only those, by
// name.
func TestNodeReadsOnlyItsPodsSecrets(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	admin := ts.client.CoreV1()
	if _, err := admin.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"default", "other"} {
		for _, name := range []string{"db", "pull", "theirs", "pending", "unused", "conf"} {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"k": "v"}}
			if _, err := admin.Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"conf", "proj", "env", "db"} {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if _, err := admin.ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	web := testPod("web", nil)
	web.Spec.NodeName = "n1"
	web.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	web.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PW", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "k"},
	}}}
	web.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "env"}}}}
	web.Spec.Volumes = []corev1.Volume{
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
		{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj"}}},
		}}}},
	}
	other := testPod("other", nil)
	other.Spec.NodeName = "n2"
	other.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "theirs"}}
	pending := testPod("pending", nil)
	pending.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pending"}}
	for _, p := range []*corev1.Pod{web, other, pending} {
		if _, err := admin.Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", p.Name, err)
		}
	}

	n1cs, admincs := nodeClients(t, ts, "n1")
	n1 := n1cs.CoreV1()
	get := func(kind, ns, name string) error {
		if kind == "secret" {
			_, err := n1.Secrets(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		}
		_, err := n1.ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
	tests := []struct {
		kind, ns, name string
		allowed        bool
	}{
		{"secret", "default", "db", true},
		{"secret", "default", "pull", true},
		{"configmap", "default", "conf", true},
		{"configmap", "default", "proj", true},
		{"configmap", "default", "env", true},
		{"secret", "default", "theirs", false},  // used by a pod on n2
		{"secret", "default", "pending", false}, // used by an unbound pod
		{"secret", "default", "unused", false},
		{"secret", "default", "conf", false},  // conf is used as a ConfigMap
		{"configmap", "default", "db", false}, // db is used as a Secret
		{"secret", "other", "db", false},      // same name, another namespace
		{"secret", "default", "missing", false},
	}
	for _, tc := range tests {
		err := get(tc.kind, tc.ns, tc.name)
		switch {
		case tc.allowed && err != nil:
			t.Errorf("node n1 getting %s %s/%s = %v, want it", tc.kind, tc.ns, tc.name, err)
		case !tc.allowed && !apierrors.IsForbidden(err):
			t.Errorf("node n1 getting %s %s/%s = %v, want 403 Forbidden", tc.kind, tc.ns, tc.name, err)
		}
	}
	if _, err := n1.Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node n1 listing secrets = %v, want 403 Forbidden", err)
	}
	if _, err := n1.ConfigMaps("").Watch(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node n1 watching configmaps = %v, want 403 Forbidden", err)
	}
	// One object by name, as a node follows what its pods mount.
	one := metav1.ListOptions{FieldSelector: "metadata.name=db"}
	if l, err := n1.Secrets("default").List(ctx, one); err != nil || len(l.Items) != 1 {
		t.Errorf("node n1 listing secret db by name = %v, want it alone", err)
	}
	w, err := n1.Secrets("default").Watch(ctx, one)
	if err != nil {
		t.Errorf("node n1 watching secret db by name = %v, want it", err)
	} else {
		w.Stop()
	}
	theirs := metav1.ListOptions{FieldSelector: "metadata.name=theirs"}
	if _, err := n1.Secrets("default").Watch(ctx, theirs); !apierrors.IsForbidden(err) {
		t.Errorf("node n1 watching secret theirs by name = %v, want 403 Forbidden", err)
	}
	if _, err := n1.Secrets("default").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name!=db"}); !apierrors.IsForbidden(err) {
		t.Errorf("node n1 listing secrets but db = %v, want 403 Forbidden", err)
	}
	zero := int64(0)
	if err := admincs.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := get("secret", "default", "db"); !apierrors.IsForbidden(err) {
		t.Errorf("node n1 getting secret db after its pod went = %v, want 403 Forbidden", err)
	}
}
