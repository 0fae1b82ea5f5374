package controllers

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certificatesinformers "k8s.io/client-go/informers/certificates/v1"
	"k8s.io/client-go/kubernetes"
	certificateslisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
)

// ClientCertSigner issues client certificates of the cluster CA, which
// the API server accepts (pki.Authority).
type ClientCertSigner interface {
	// SignRequestedClientCert issues a certificate for pub naming the
	// user commonName in the groups orgs, valid for validity (a default
	// when not positive) and backdated by at most 5 minutes. It returns
	// the certificate PEM.
	SignRequestedClientCert(commonName string, orgs []string, pub crypto.PublicKey, validity time.Duration) ([]byte, error)
}

// minSignedValidity is the shortest certificate the signer issues, as
// Kubernetes' signers bound a CSR's expirationSeconds from below.
const minSignedValidity = 10 * time.Minute

// CSRSigningController signs the approved CertificateSigningRequests of
// the signer kubernetes.io/kube-apiserver-client with the cluster CA:
// the certificate names the user of the request's common name in the
// groups of its organizations, for the requested duration (at least ten
// minutes). A request whose usages are not those of a client
// certificate gets the condition Failed instead.
type CSRSigningController struct {
	client kubernetes.Interface
	csrs   certificateslisters.CertificateSigningRequestLister
	signer ClientCertSigner
	synced []cache.InformerSynced
	*loop
}

// NewCSRSigningController returns a controller fed by csrs that signs
// with signer. lg may be nil.
func NewCSRSigningController(client kubernetes.Interface, csrs certificatesinformers.CertificateSigningRequestInformer, signer ClientCertSigner, lg *slog.Logger) (*CSRSigningController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &CSRSigningController{client: client, csrs: csrs.Lister(), signer: signer}
	c.loop = newLoop("csr-signing", lg.With("component", "csr-signing-controller"), c.sync)
	enqueue := func(obj any) {
		if key, ok := keyOf(obj); ok {
			c.add(key)
		}
	}
	synced, err := addHandlers(handler{csrs.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}})
	if err != nil {
		return nil, err
	}
	c.synced = synced
	return c, nil
}

// Run signs with workers goroutines until ctx ends.
func (c *CSRSigningController) Run(ctx context.Context, workers int) error {
	return c.run(ctx, workers, c.synced...)
}

func hasTrueCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, cond := range csr.Status.Conditions {
		if cond.Type == t && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (c *CSRSigningController) sync(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName || len(csr.Status.Certificate) > 0 ||
		!hasTrueCondition(csr, certificatesv1.CertificateApproved) || hasTrueCondition(csr, certificatesv1.CertificateDenied) ||
		hasTrueCondition(csr, certificatesv1.CertificateFailed) {
		return nil
	}
	csr = csr.DeepCopy()
	req, err := parseCSR(csr.Spec.Request)
	if err == nil {
		err = clientUsages(csr.Spec.Usages)
	}
	if err != nil {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "SignerValidationFailure",
			Message: err.Error(), LastUpdateTime: metav1.Now(),
		})
		_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
		return err
	}
	var validity time.Duration
	if e := csr.Spec.ExpirationSeconds; e != nil {
		validity = max(time.Duration(*e)*time.Second, minSignedValidity)
	}
	cert, err := c.signer.SignRequestedClientCert(req.Subject.CommonName, req.Subject.Organization, req.PublicKey, validity)
	if err != nil {
		return fmt.Errorf("sign %s: %w", name, err)
	}
	csr.Status.Certificate = cert
	_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
	return err
}

// parseCSR reads a CSR's PEM request, checking its signature.
func parseCSR(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, err
	}
	if req.Subject.CommonName == "" {
		return nil, fmt.Errorf("subject common name (the user name) must be set")
	}
	return req, nil
}

// clientUsages requires client auth, allowing digital signature and key
// encipherment besides.
func clientUsages(usages []certificatesv1.KeyUsage) error {
	client := false
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment:
		case certificatesv1.UsageClientAuth:
			client = true
		default:
			return fmt.Errorf("invalid usage for client certificate: %s", u)
		}
	}
	if !client {
		return fmt.Errorf("missing required usage for client certificate: %s", certificatesv1.UsageClientAuth)
	}
	return nil
}
