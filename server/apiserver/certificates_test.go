package apiserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
)

// selfSignedPEM is a new self-signed certificate, a CA one if ca is set.
func selfSignedPEM(t *testing.T, cn string, ca bool) []byte {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: ca, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newTestCSR(t *testing.T, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "client"}}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), SignerName: "example.com/test",
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			// A client's claim of identity is replaced by the caller's.
			Username: "forged",
		}}
}

// TestCSRSubresources drives a CSR through the main resource, its
// approval and its status: each write changes only its part.
func TestCSRSubresources(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	csrs := ts.client.CertificatesV1().CertificateSigningRequests()

	res, err := ts.client.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res.APIResources {
		names = append(names, r.Name)
	}
	for _, want := range []string{"certificatesigningrequests", "certificatesigningrequests/approval", "certificatesigningrequests/status", "clustertrustbundles"} {
		if !slices.Contains(names, want) {
			t.Errorf("discovery of certificates.k8s.io/v1 = %v, want %s in it", names, want)
		}
	}

	created, err := csrs.Create(ctx, newTestCSR(t, "one"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.Spec.Username != "system:admin" || !slices.Contains(created.Spec.Groups, "system:masters") {
		t.Errorf("requester = %q %v, want system:admin in system:masters", created.Spec.Username, created.Spec.Groups)
	}

	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"}
	// The main resource keeps status: the condition is dropped.
	up := created.DeepCopy()
	up.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
	up.Annotations = map[string]string{"a": "b"}
	got, err := csrs.Update(ctx, up, metav1.UpdateOptions{})
	if err != nil || len(got.Status.Conditions) != 0 || got.Annotations["a"] != "b" {
		t.Fatalf("Update = %+v, %v; want the annotation and no condition", got, err)
	}
	// Status may not approve.
	up = got.DeepCopy()
	up.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
	_, err = csrs.UpdateStatus(ctx, up, metav1.UpdateOptions{})
	invalidField(t, "approving through status", err, "status.conditions")

	// Approval sets conditions, not the certificate.
	up.Status.Certificate = selfSignedPEM(t, "issued", false)
	got, err = csrs.UpdateApproval(ctx, up.Name, up, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateApproval: %v", err)
	}
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != certificatesv1.CertificateApproved || got.Status.Conditions[0].LastUpdateTime.IsZero() {
		t.Errorf("approval conditions = %+v, want Approved with lastUpdateTime", got.Status.Conditions)
	}
	if len(got.Status.Certificate) != 0 {
		t.Errorf("approval set the certificate")
	}
	// Approved and Denied are exclusive.
	_, err = csrs.Patch(ctx, "one", types.JSONPatchType,
		[]byte(`[{"op":"add","path":"/status/conditions/-","value":{"type":"Denied","status":"True"}}]`), metav1.PatchOptions{}, "approval")
	invalidField(t, "denying an approved CSR", err, "status.conditions")

	// Status sets the certificate, once.
	cert := selfSignedPEM(t, "issued", false)
	up = got.DeepCopy()
	up.Status.Certificate = cert
	if got, err = csrs.UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil || string(got.Status.Certificate) != string(cert) {
		t.Fatalf("UpdateStatus = %v; certificate set: %v", err, err == nil && len(got.Status.Certificate) > 0)
	}
	up = got.DeepCopy()
	up.Status.Certificate = selfSignedPEM(t, "other", false)
	_, err = csrs.UpdateStatus(ctx, up, metav1.UpdateOptions{})
	invalidField(t, "replacing the certificate", err, "status.certificate")

	if _, err := csrs.Create(ctx, newTestCSR(t, "two"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other := newTestCSR(t, "three")
	other.Spec.SignerName = "example.com/other"
	if _, err := csrs.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := csrs.List(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=example.com/test"})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("List by signer = %d items, %v; want 2", len(list.Items), err)
	}
}

// TestCertificatesRefused sends bad CSRs and ClusterTrustBundles: each is
// a 422 naming the field, and nothing is stored.
func TestCertificatesRefused(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	csrs := ts.client.CertificatesV1().CertificateSigningRequests()
	bad := newTestCSR(t, "bad")
	bad.Spec.Request = selfSignedPEM(t, "not a request", false)
	_, err := csrs.Create(ctx, bad, metav1.CreateOptions{})
	invalidField(t, "creating a CSR holding a certificate", err, "spec.request")
	short := newTestCSR(t, "short")
	short.Spec.ExpirationSeconds = new(int32(60))
	_, err = csrs.Create(ctx, short, metav1.CreateOptions{})
	invalidField(t, "creating a CSR of 60 s", err, "spec.expirationSeconds")
	if _, err := csrs.Get(ctx, "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get of the refused CSR = %v, want NotFound", err)
	}

	ctbs := ts.client.CertificatesV1().ClusterTrustBundles()
	leaf := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "leaf"},
		Spec: certificatesv1.ClusterTrustBundleSpec{TrustBundle: string(selfSignedPEM(t, "leaf", false))}}
	_, err = ctbs.Create(ctx, leaf, metav1.CreateOptions{})
	invalidField(t, "creating a bundle of a leaf certificate", err, "spec.trustBundle")
	misnamed := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "misnamed"},
		Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "example.com/s", TrustBundle: string(selfSignedPEM(t, "ca", true))}}
	_, err = ctbs.Create(ctx, misnamed, metav1.CreateOptions{})
	invalidField(t, "creating a bundle not named after its signer", err, "metadata.name")

	good := misnamed.DeepCopy()
	good.Name = "example.com:s:one"
	created, err := ctbs.Create(ctx, good, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	created.Spec.SignerName = "example.com/t"
	_, err = ctbs.Update(ctx, created, metav1.UpdateOptions{})
	invalidField(t, "changing a bundle's signer", err, "spec.signerName")
}

// TestCSRAPIFlow goes through a CSR's life as clients drive it: watched
// by name, patched and updated, conditions of any type set through
// approval, a certificate chain and other conditions through status,
// metadata changed along each write, then deleted one and by signer.
func TestCSRAPIFlow(t *testing.T) {
	ts := newTestServer(t)
	ctx := testContext(t)
	csrs := ts.client.CertificatesV1().CertificateSigningRequests()
	csrGVR := certificatesv1.SchemeGroupVersion.WithResource("certificatesigningrequests")

	groups, err := ts.client.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool {
		return g.Name == "certificates.k8s.io" && g.PreferredVersion.Version == "v1"
	}) {
		t.Errorf("discovery groups lack certificates.k8s.io/v1: %+v", groups.Groups)
	}

	tmpl := newTestCSR(t, "")
	tmpl.GenerateName = "flow-"
	tmpl.Spec.SignerName = "example.com/flow"
	tmpl.Spec.ExpirationSeconds = new(int32(3600))
	var created *certificatesv1.CertificateSigningRequest
	for range 3 {
		c, err := csrs.Create(ctx, tmpl, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		created = c
	}
	list, err := csrs.List(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=example.com/flow"})
	if err != nil || len(list.Items) != 3 {
		t.Fatalf("List = %d items, %v; want 3", len(list.Items), err)
	}
	w, err := csrs.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, FieldSelector: "metadata.name=" + created.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	patched, err := csrs.Patch(ctx, created.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"patched":"true"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Annotations["patched"] != "true" {
		t.Fatalf("Patch = %v, annotations %v", err, patched.Annotations)
	}
	if ev := <-w.ResultChan(); ev.Type != watch.Modified || ev.Object.(*certificatesv1.CertificateSigningRequest).Annotations["patched"] != "true" {
		t.Errorf("watch event = %s %+v, want the patch", ev.Type, ev.Object)
	}

	got, err := ts.dynamicClient(t).Resource(csrGVR).Get(ctx, created.Name, metav1.GetOptions{}, "approval")
	if err != nil || got.GetUID() != created.UID || got.GetKind() != "CertificateSigningRequest" {
		t.Fatalf("get approval = %v, %v", got, err)
	}
	approval, err := csrs.Patch(ctx, created.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"patchedapproval":"true"}},"status":{"conditions":[{"type":"ApprovalPatch","status":"True","reason":"test"}]}}`),
		metav1.PatchOptions{}, "approval")
	if err != nil {
		t.Fatalf("patch approval: %v", err)
	}
	if len(approval.Status.Conditions) != 1 || approval.Status.Conditions[0].Type != "ApprovalPatch" || approval.Annotations["patchedapproval"] != "true" {
		t.Errorf("patched approval: conditions %+v, annotations %v", approval.Status.Conditions, approval.Annotations)
	}
	approval.Status.Conditions = append(approval.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"})
	approval, err = csrs.UpdateApproval(ctx, approval.Name, approval, metav1.UpdateOptions{})
	if err != nil || len(approval.Status.Conditions) != 2 || approval.Status.Conditions[1].Type != certificatesv1.CertificateApproved {
		t.Fatalf("update approval = %v, conditions %+v", err, approval)
	}

	if got, err = ts.dynamicClient(t).Resource(csrGVR).Get(ctx, created.Name, metav1.GetOptions{}, "status"); err != nil || got.GetUID() != created.UID {
		t.Fatalf("get status = %v, %v", got, err)
	}
	chain := append(selfSignedPEM(t, "issuer", true), selfSignedPEM(t, "issued", false)...)
	chainJSON, _ := json.Marshal(chain)
	st, err := csrs.Patch(ctx, created.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"patchedstatus":"true"}},"status":{"certificate":`+string(chainJSON)+`}}`), metav1.PatchOptions{}, "status")
	if err != nil || string(st.Status.Certificate) != string(chain) || st.Annotations["patchedstatus"] != "true" {
		t.Fatalf("patch status = %v; certificate set %v, annotations %v", err, err == nil && len(st.Status.Certificate) > 0, st)
	}
	st.Status.Conditions = append(st.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: "StatusUpdate", Status: corev1.ConditionTrue, Reason: "Test"})
	st, err = csrs.UpdateStatus(ctx, st, metav1.UpdateOptions{})
	if err != nil || len(st.Status.Conditions) != 3 || st.Status.Conditions[2].Type != "StatusUpdate" {
		t.Fatalf("update status = %v, %+v", err, st)
	}

	if err := csrs.Delete(ctx, created.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := csrs.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: "spec.signerName=example.com/flow"}); err != nil {
		t.Fatal(err)
	}
	if list, err = csrs.List(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=example.com/flow"}); err != nil || len(list.Items) != 0 {
		t.Errorf("List after DeleteCollection = %d items, %v", len(list.Items), err)
	}
}

// TestSignerPermissions writes a CSR's approval and certificate as a
// user allowed to update both subresources: refused until the user may
// also "approve" and "sign" for the signer (by its domain's wildcard).
func TestSignerPermissions(t *testing.T) {
	rs := newRBACServer(t)
	ctx := testContext(t)
	if _, err := rs.client.CertificatesV1().CertificateSigningRequests().Create(ctx, newTestCSR(t, "one"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	writer := rbacv1.PolicyRule{Verbs: []string{"get", "update"}, APIGroups: []string{"certificates.k8s.io"},
		Resources: []string{"certificatesigningrequests", "certificatesigningrequests/approval", "certificatesigningrequests/status"}}
	signer := rbacv1.PolicyRule{Verbs: []string{"approve", "sign"}, APIGroups: []string{"certificates.k8s.io"},
		Resources: []string{"signers"}, ResourceNames: []string{"example.com/*"}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "csr-writer"}, Rules: []rbacv1.PolicyRule{writer}}
	if _, err := rs.client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-csr"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "csr-writer"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "alice"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs.waitAllowed(t, alice, auth.Attributes{Verb: "update", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval", Name: "one"})
	csrs := rs.clientAs(t, alice, rest.ImpersonationConfig{}).CertificatesV1().CertificateSigningRequests()
	approve := func() error {
		c, err := csrs.Get(ctx, "one", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"}}
		_, err = csrs.UpdateApproval(ctx, "one", c, metav1.UpdateOptions{})
		return err
	}
	sign := func() error {
		c, err := csrs.Get(ctx, "one", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Status.Certificate = selfSignedPEM(t, "issued", false)
		_, err = csrs.UpdateStatus(ctx, c, metav1.UpdateOptions{})
		return err
	}
	if err := approve(); !apierrors.IsForbidden(err) {
		t.Errorf("approving without approve on the signer = %v, want 403", err)
	}
	if err := sign(); !apierrors.IsForbidden(err) {
		t.Errorf("signing without sign on the signer = %v, want 403", err)
	}

	role.Rules = append(role.Rules, signer)
	if _, err := rs.client.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs.waitAllowed(t, alice, auth.Attributes{Verb: "sign", APIGroup: "certificates.k8s.io", Resource: "signers", Name: "example.com/*"})
	if err := approve(); err != nil {
		t.Errorf("approving with approve on example.com/* = %v", err)
	}
	if err := sign(); err != nil {
		t.Errorf("signing with sign on example.com/* = %v", err)
	}
}
