//go:build integration

package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// webhookRef is the image holding busybox and test/testdata/webhook.
const webhookRef = "docker.io/minik/webhook:test"

func writeWebhookImage(t testing.TB, dir string) {
	writeProgramImage(t, dir, "webhook", webhookRef)
}

// TestIntegrationAdmissionWebhooks serves a validating and a mutating
// webhook from a pod behind a Service, with a certificate the test
// issues for the Service's name: the API server reaches the pod through
// its node's tunnel and checks the certificate against the caBundle. A
// create the webhook refuses fails with its message; another gets the
// label the mutating webhook adds.
func TestIntegrationAdmissionWebhooks(t *testing.T) {
	s, ip := startClusterServer(t)
	a := startAgentWithImages(t, s, ip, 1, writeWebhookImage)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, a.name)
	ctx := context.Background()
	const ns = "webhook-e2e"
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	eventually(t, 30*time.Second, "default ServiceAccount", func() error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	caPEM, certPEM, keyPEM := issueServingCert(t, "hook."+ns+".svc")
	startWebhookPod(t, cs, ns, string(certPEM), string(keyPEM))

	admission := cs.AdmissionregistrationV1()
	t.Cleanup(func() {
		admission.ValidatingWebhookConfigurations().Delete(context.Background(), "e2e-validate", metav1.DeleteOptions{})
		admission.MutatingWebhookConfigurations().Delete(context.Background(), "e2e-mutate", metav1.DeleteOptions{})
	})
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
	}}
	onlyNS := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	client := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{
			Service:  &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "hook", Path: &path},
			CABundle: caPEM,
		}
	}
	none := admissionregistrationv1.SideEffectClassNone
	mustCreate(t, func() error {
		_, err := admission.ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-validate"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "validate.e2e.minik.dev", ClientConfig: client("/validate"), Rules: rules, NamespaceSelector: onlyNS,
				SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := admission.MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-mutate"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name: "mutate.e2e.minik.dev", ClientConfig: client("/mutate"), Rules: rules, NamespaceSelector: onlyNS,
				SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			}},
		}, metav1.CreateOptions{})
		return err
	})

	// The configurations come into force once the server's watch has
	// them: until the denial shows, creates may pass.
	cms := cs.CoreV1().ConfigMaps(ns)
	const want = `admission webhook "validate.e2e.minik.dev" denied the request: names starting with forbidden- are refused by the in-cluster webhook`
	try := 0
	eventually(t, 30*time.Second, "the webhook's denial", func() error {
		try++
		name := fmt.Sprintf("forbidden-%d", try)
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err == nil {
			return fmt.Errorf("%s was created", name)
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("create %s = %v, want 403 %q", name, err, want)
		}
		return nil
	})
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "allowed"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create allowed: %v", err)
	}
	if cm.Labels["mutated-by"] != "webhook" {
		t.Errorf("labels of the created ConfigMap = %v, want mutated-by=webhook", cm.Labels)
	}
	waitLog(t, cs, ns, "hook", "/mutate CREATE "+ns+"/allowed", 10*time.Second)

	checkNamespaceGone(t, cs, ns)
}

// startWebhookPod runs the webhook server in ns behind the Service
// "hook" (port 443) and waits until the Service has it as endpoint.
func startWebhookPod(t *testing.T, cs *kubernetes.Clientset, ns, cert, key string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hook", Labels: map[string]string{"app": "hook"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "main", Image: webhookRef, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"/webhook"},
				Env:   []corev1.EnvVar{{Name: "TLS_CERT", Value: cert}, {Name: "TLS_KEY", Value: key}},
				Ports: []corev1.ContainerPort{{ContainerPort: 8443}},
			}},
		},
	}
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hook"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "hook"},
			Ports:    []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(8443)}},
		},
	}
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		return err
	})
	waitLog(t, cs, ns, "hook", "serving on :8443", 90*time.Second)
	eventually(t, 30*time.Second, "a ready endpoint of hook", func() error {
		ep, err := cs.CoreV1().Endpoints(ns).Get(ctx, "hook", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, ss := range ep.Subsets {
			if len(ss.Addresses) > 0 {
				return nil
			}
		}
		return fmt.Errorf("no ready address")
	})
}

// issueServingCert returns a new CA's certificate, and a certificate and
// key it signed for dnsName, all PEM.
func issueServingCert(t *testing.T, dnsName string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook-e2e-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
