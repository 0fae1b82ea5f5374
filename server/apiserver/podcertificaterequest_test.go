package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestPodCertificateRequests creates requests and issues them through
// the status subresource by update, merge patch and apply; the main
// resource changes only metadata.
func TestPodCertificateRequests(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	res, err := ts.client.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "podcertificaterequests/status" }) {
		t.Errorf("discovery of certificates.k8s.io/v1 lacks podcertificaterequests/status: %+v", res.APIResources)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Now().Add(-time.Minute).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "pod"}, NotBefore: nb, NotAfter: nb.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	status := certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue,
			Reason: "Test", Message: "issued", LastTransitionTime: metav1.Now()}},
		CertificateChain: chain, NotBefore: &metav1.Time{Time: nb}, NotAfter: &metav1.Time{Time: nb.Add(time.Hour)},
		BeginRefreshAt: &metav1.Time{Time: nb.Add(15 * time.Minute)},
	}
	pcrs := ts.client.CertificatesV1().PodCertificateRequests("default")
	newPCR := func() *certificatesv1.PodCertificateRequest {
		t.Helper()
		p, err := pcrs.Create(ctx, &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: "pcr-"},
			Spec: certificatesv1.PodCertificateRequestSpec{SignerName: "example.com/test", PodName: "pod", PodUID: "u1",
				ServiceAccountName: "default", ServiceAccountUID: "u2", NodeName: "node", NodeUID: "u3",
				MaxExpirationSeconds: new(int32(86400)), StubPKCS10Request: stub},
			Status: status, // dropped
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if len(p.Status.Conditions) != 0 {
			t.Errorf("created with status %+v", p.Status)
		}
		return p
	}

	p := newPCR()
	p.Labels = map[string]string{"a": "b"}
	p.Spec.PodName = "other"
	if _, err := pcrs.Update(ctx, p, metav1.UpdateOptions{}); err == nil {
		t.Error("Update changed the spec")
	}
	p.Spec.PodName = "pod"
	if p, err = pcrs.Update(ctx, p, metav1.UpdateOptions{}); err != nil || p.Labels["a"] != "b" {
		t.Fatalf("Update = %v, labels %v", err, p.Labels)
	}
	p.Status = status
	if p, err = pcrs.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil || p.Status.CertificateChain != chain {
		t.Fatalf("UpdateStatus = %v", err)
	}
	p.Status.CertificateChain = ""
	_, err = pcrs.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	invalidField(t, "changing an issued request", err, "status")

	patch, _ := json.Marshal(map[string]any{"status": status})
	p = newPCR()
	if p, err = pcrs.Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil || p.Status.CertificateChain != chain {
		t.Fatalf("merge patch of status = %v", err)
	}
	p = newPCR()
	apply, _ := json.Marshal(map[string]any{"apiVersion": "certificates.k8s.io/v1", "kind": "PodCertificateRequest",
		"metadata": map[string]any{"name": p.Name}, "status": status})
	if p, err = pcrs.Patch(ctx, p.Name, types.ApplyPatchType, apply, metav1.PatchOptions{FieldManager: "test"}, "status"); err != nil ||
		p.Status.CertificateChain != chain {
		t.Fatalf("apply of status = %v", err)
	}
}
