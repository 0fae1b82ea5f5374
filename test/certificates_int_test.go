//go:build integration

package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// caPEM is a new self-signed CA certificate as PEM.
func caPEM(t *testing.T, cn string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestIntegrationClusterTrustBundleVolume runs pods with projected
// clusterTrustBundle sources: one by name and one by signer and labels
// read the expected certificates, the signer's file follows a bundle that
// comes to match, and a pod naming a bundle that does not exist waits
// with FailedMount until it is created.
func TestIntegrationClusterTrustBundleVolume(t *testing.T) {
	s, ip := startClusterServer(t)
	a := startAgent(t, s, ip, 1)
	cs := clientFor(t, s)
	waitNodeReady(t, cs, a.name)
	ctx := context.Background()
	ctbs := cs.CertificatesV1().ClusterTrustBundles()
	pemA, pemB, pemC := caPEM(t, "a"), caPEM(t, "b"), caPEM(t, "c")
	for _, b := range []*certificatesv1.ClusterTrustBundle{
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Spec: certificatesv1.ClusterTrustBundleSpec{TrustBundle: pemA}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ex.com:s:1", Labels: map[string]string{"alive": "true"}},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "ex.com/s", TrustBundle: pemB}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ex.com:s:2", Labels: map[string]string{"alive": "false"}},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "ex.com/s", TrustBundle: pemC}},
	} {
		mustCreate(t, func() error { _, err := ctbs.Create(ctx, b, metav1.CreateOptions{}); return err })
		t.Cleanup(func() { ctbs.Delete(context.Background(), b.Name, metav1.DeleteOptions{}) })
	}

	signer := "ex.com/s"
	reader := ctbPod("reader", `cat /ctb/name.pem; echo SIGNER; cat /ctb/signer.pem; echo END; `+
		`while true; do echo COUNT=$(grep -c 'BEGIN CERTIFICATE' /ctb/signer.pem); sleep 1; done`,
		corev1.VolumeProjection{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Name: new("plain"), Path: "name.pem"}},
		corev1.VolumeProjection{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{SignerName: &signer, Path: "signer.pem",
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"alive": "true"}}}})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Pods("default").Create(ctx, reader, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() { deletePodNow(cs, "reader") })
	waitPodRunning(t, cs, "default", "reader")
	waitLog(t, cs, "default", "reader", "END", 30*time.Second)
	out, err := podLogs(cs, "default", "reader")
	if err != nil {
		t.Fatal(err)
	}
	if want := pemA + "SIGNER\n" + pemB + "END\n"; !strings.HasPrefix(out, want) {
		t.Errorf("reader's log starts with\n%s\nwant\n%s", out[:min(len(out), len(want))], want)
	}
	waitLog(t, cs, "default", "reader", "COUNT=1", 30*time.Second)
	two, err := ctbs.Get(ctx, "ex.com:s:2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	two.Labels["alive"] = "true"
	if _, err := ctbs.Update(ctx, two, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, cs, "default", "reader", "COUNT=2", 60*time.Second)

	blocked := ctbPod("blocked", "cat /ctb/late.pem; while true; do sleep 1; done",
		corev1.VolumeProjection{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Name: new("late"), Path: "late.pem", Optional: new(false)}})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Pods("default").Create(ctx, blocked, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() { deletePodNow(cs, "blocked") })
	waitEventMessage(t, cs, "blocked", "FailedMount", `clustertrustbundle "late" not found`)
	p, err := cs.CoreV1().Pods("default").Get(ctx, "blocked", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("blocked is %s, want Pending while its bundle is missing", p.Status.Phase)
	}
	ready := false
	for _, c := range p.Status.Conditions {
		ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && c.Reason == "ContainersNotReady" &&
			c.Message == "containers with unready status: [main]"
	}
	if !ready {
		t.Errorf("blocked's conditions = %+v, want Ready False for ContainersNotReady of main", p.Status.Conditions)
	}
	late := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Spec: certificatesv1.ClusterTrustBundleSpec{TrustBundle: pemC}}
	mustCreate(t, func() error { _, err := ctbs.Create(ctx, late, metav1.CreateOptions{}); return err })
	t.Cleanup(func() { ctbs.Delete(context.Background(), "late", metav1.DeleteOptions{}) })
	waitPodRunning(t, cs, "default", "blocked")
	waitLog(t, cs, "default", "blocked", pemC, 30*time.Second)
}

// ctbPod runs script in busybox with the sources as one projected volume
// at /ctb. It ends on SIGTERM.
func ctbPod(name, script string, sources ...corev1.VolumeProjection) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent,
				Command:      []string{"sh", "-c", "trap 'exit 0' TERM; " + script},
				VolumeMounts: []corev1.VolumeMount{{Name: "ctb", MountPath: "/ctb"}},
			}},
			Volumes: []corev1.Volume{{Name: "ctb", VolumeSource: corev1.VolumeSource{
				Projected: &corev1.ProjectedVolumeSource{Sources: sources}}}},
		},
	}
}

// deletePodNow deletes a pod of the default namespace at once.
func deletePodNow(cs *kubernetes.Clientset, name string) {
	cs.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
}

// TestIntegrationCSRClientCertificate asks for a client certificate
// through a CertificateSigningRequest, approves it, and talks to the API
// server with what the signer issued: the server knows the user.
func TestIntegrationCSRClientCertificate(t *testing.T) {
	s := startServer(t)
	cs := clientFor(t, s)
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "tester", Organization: []string{"testers"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "tester"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeAPIServerClientSignerName, ExpirationSeconds: new(int32(3600)),
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { csrs.Delete(context.Background(), "tester", metav1.DeleteOptions{}) })
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"}}
	if _, err := csrs.UpdateApproval(ctx, "tester", csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var certPEM []byte
	eventually(t, 60*time.Second, "the CSR signed", func() error {
		c, err := csrs.Get(ctx, "tester", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if certPEM = c.Status.Certificate; len(certPEM) == 0 {
			return fmt.Errorf("not signed; conditions %+v", c.Status.Conditions)
		}
		return nil
	})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.AnonymousClientConfig(cfg)
	cfg.CertData, cfg.KeyData = certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	tester := kubernetes.NewForConfigOrDie(cfg)
	review, err := tester.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview with the issued certificate: %v", err)
	}
	if u := review.Status.UserInfo; u.Username != "tester" || !slices.Contains(u.Groups, "testers") {
		t.Errorf("user = %+v, want tester in testers", u)
	}
}

// waitEventMessage waits up to a minute for an event of reason about pod
// default/pod whose message holds want.
func waitEventMessage(t *testing.T, cs *kubernetes.Clientset, pod, reason, want string) {
	t.Helper()
	eventually(t, 60*time.Second, reason+" event of "+pod, func() error {
		evs, err := cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=" + reason})
		if err != nil {
			return err
		}
		if len(evs.Items) == 0 {
			return fmt.Errorf("no %s event yet", reason)
		}
		if msg := evs.Items[0].Message; !strings.Contains(msg, want) {
			return fmt.Errorf("%s message %q", reason, msg)
		}
		return nil
	})
}
