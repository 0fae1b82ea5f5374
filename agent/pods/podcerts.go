package pods

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Pod certificates: a podCertificate projection holds a private key the
// node made and a certificate chain for it that the projection's signer
// issued, as the kubelet's podcertificate manager provides them. For each
// projection of a pod a goroutine of the certManager makes a key of the
// projection's type, asks the server for a PodCertificateRequest for it
// (CertificateSource; the request's stubPKCS10Request, signed with the
// key, proves the node holds it) and waits for the signer. Until a
// certificate is issued the volume cannot be set up, so the pod's
// containers do not start. A denied or failed request is recorded as an
// event on the pod and followed, after a back-off, by a new request for a
// new key. Once issued, the credentials are kept in memory (never on
// disk outside the volume's tmpfs) and renewed from the signer's
// beginRefreshAt on, plus a jitter, with a new key and request; the held
// credentials serve until the new ones come. An agent that restarts asks
// again.

const (
	// certWait is how long one call waits for a signer.
	certWait = 20 * time.Second
	// certCallTimeout bounds one call.
	certCallTimeout = certWait + 10*time.Second
	// certRetryBase and certRetryMax bound the back-off before a new
	// request after a denied or failed one, or an error.
	certRetryBase = 10 * time.Second
	certRetryMax  = 5 * time.Minute
	// certMaxJitter bounds how long after beginRefreshAt a certificate is
	// renewed, so that projections do not renew together.
	certMaxJitter = 5 * time.Minute
	// certOverdue is how long after its refresh time a certificate not
	// yet renewed is reported overdue.
	certOverdue = 10 * time.Minute
)

// Event reasons of pod certificates, as the kubelet's.
const (
	EventCertificateDenied  = "Denied"
	EventCertificateFailed  = "Failed"
	EventCertificateOverdue = "CertificateOverdueForRefresh"
	EventCertificateExpired = "CertificateExpired"
)

// CertificateSource creates the PodCertificateRequests of the node's pods'
// podCertificate projections and reports their outcomes. The agent's
// implementation asks the server. Implementations must be safe for
// concurrent use.
type CertificateSource interface {
	// CreatePodCertificate asks the signer of projection p of pod for a
	// certificate for the key of stub, a DER PKCS#10 request signed with
	// it, and returns the outcome so far, waiting up to wait for it.
	CreatePodCertificate(ctx context.Context, pod *corev1.Pod, p CertificateProjection, stub []byte, wait time.Duration) (CertificateOutcome, error)
	// WaitPodCertificate returns the outcome of pod's request name,
	// waiting up to wait while it is pending. A request that is gone is an
	// error wrapping ErrNotFound.
	WaitPodCertificate(ctx context.Context, pod *corev1.Pod, name string, wait time.Duration) (CertificateOutcome, error)
}

// CertificateProjection names a podCertificate projection of a pod.
type CertificateProjection struct {
	// Volume is the projected volume; Source the index of the
	// podCertificate source among its sources.
	Volume     string
	Source     int
	SignerName string
	KeyType    string
}

// CertificateState is how far a PodCertificateRequest got.
type CertificateState int

// The states of a PodCertificateRequest.
const (
	CertificatePending CertificateState = iota
	CertificateIssued
	CertificateDenied
	CertificateFailed
)

// CertificateOutcome is the state of a PodCertificateRequest.
type CertificateOutcome struct {
	// Request is the PodCertificateRequest's name.
	Request string
	State   CertificateState
	// Chain (PEM, leaf first) and its times, when issued.
	Chain                               []byte
	NotBefore, BeginRefreshAt, NotAfter time.Time
	// Reason and Message, when denied or failed.
	Reason, Message string
}

// certKey names one podCertificate projection of a pod.
type certKey struct {
	uid    types.UID
	volume string
	source int
}

// credential is a key (PEM PKCS#8) and the chain issued for it.
type credential struct {
	key, chain []byte
	refreshAt  time.Time
	notAfter   time.Time
}

// certProjection is what the node holds of one projection.
type certProjection struct {
	stop context.CancelFunc
	// cred is the latest issued credential; nil until the first.
	cred *credential
	// why is why there is none yet.
	why error
}

// certManager keeps the credentials of the node's pods' podCertificate
// projections, one goroutine per projection. Its methods are safe for
// concurrent use.
type certManager struct {
	src CertificateSource
	now func() time.Time
	lg  *slog.Logger
	// changed tells the pod's worker that its credentials changed.
	changed func(uid types.UID)
	// event records an event about pod.
	event func(pod *corev1.Pod, eventType, reason, message string)
	// retryBase and retryMax bound the back-off between requests.
	retryBase, retryMax time.Duration

	mu    sync.Mutex // guards ctx, projs and their cred and why
	ctx   context.Context
	projs map[certKey]*certProjection
	wg    sync.WaitGroup
}

// errNotIssued is why a projection has no credentials while its first
// request is pending.
var errNotIssued = errors.New("credential bundle is not issued yet")

func newCertManager(src CertificateSource, now func() time.Time, lg *slog.Logger) *certManager {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &certManager{
		src: src, now: now, lg: lg, retryBase: certRetryBase, retryMax: certRetryMax,
		changed: func(types.UID) {}, event: func(*corev1.Pod, string, string, string) {},
		projs: map[certKey]*certProjection{},
	}
}

// start lets the manager ask for credentials until ctx ends.
func (c *certManager) start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx = ctx
}

// wait returns once every goroutine of the manager has ended; they end
// with the context start was given.
func (c *certManager) wait() {
	c.wg.Wait()
}

// get returns the key and chain of projection p of pod, asking for them
// first if the node holds none.
func (c *certManager) get(pod *corev1.Pod, volume string, source int, p *corev1.PodCertificateProjection) (key, chain []byte, err error) {
	k := certKey{uid: pod.UID, volume: volume, source: source}
	c.mu.Lock()
	defer c.mu.Unlock()
	held := c.projs[k]
	if held == nil {
		if c.ctx == nil || c.ctx.Err() != nil {
			return nil, nil, errors.New("the node is not running")
		}
		ctx, stop := context.WithCancel(c.ctx)
		held = &certProjection{stop: stop, why: errNotIssued}
		c.projs[k] = held
		ref := CertificateProjection{Volume: volume, Source: source, SignerName: p.SignerName, KeyType: p.KeyType}
		lg := c.lg.With("pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID, "volume", volume, "source", source)
		c.wg.Go(func() { c.run(ctx, pod, k, ref, lg) })
	}
	if held.cred == nil {
		return nil, nil, held.why
	}
	return held.cred.key, held.cred.chain, nil
}

// forget stops asking for the credentials of pod uid and drops them.
func (c *certManager) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.projs {
		if k.uid == uid {
			p.stop()
			delete(c.projs, k)
		}
	}
}

// run keeps credentials for projection k of pod until ctx ends.
func (c *certManager) run(ctx context.Context, pod *corev1.Pod, k certKey, ref CertificateProjection, lg *slog.Logger) {
	backoff := c.retryBase
	var late lateness
	for {
		cred, err := c.obtain(ctx, pod, ref, lg)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		if held := c.projs[k]; held != nil {
			if err != nil {
				held.why = err
				late.check(c, pod, held.cred)
			} else {
				held.cred, late = cred, lateness{}
			}
		}
		c.mu.Unlock()
		wait := backoff
		if err != nil {
			lg.Info("pod certificate not issued", "err", err, "retryIn", backoff)
			backoff = min(2*backoff, c.retryMax)
		} else {
			lg.Info("pod certificate issued", "refreshAt", cred.refreshAt, "notAfter", cred.notAfter)
			backoff = c.retryBase
			wait = cred.refreshAt.Sub(c.now())
		}
		c.changed(k.uid)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// lateness records which warnings about a certificate that could not be
// renewed were given, each once per certificate.
type lateness struct {
	overdue, expired bool
}

// check warns, as the kubelet does, when cred is overdue for renewal (10
// minutes past its refresh time) or expired.
func (l *lateness) check(c *certManager, pod *corev1.Pod, cred *credential) {
	if cred == nil {
		return
	}
	now := c.now()
	if !l.overdue && now.After(cred.refreshAt.Add(certOverdue)) {
		l.overdue = true
		c.event(pod, corev1.EventTypeWarning, EventCertificateOverdue, "PodCertificate refresh overdue")
	}
	if !l.expired && now.After(cred.notAfter) {
		l.expired = true
		c.event(pod, corev1.EventTypeWarning, EventCertificateExpired, "PodCertificate expired")
	}
}

// obtain makes a key, asks for a certificate for it and waits for the
// signer. A denied or failed request is recorded as an event and
// returned as an error.
func (c *certManager) obtain(ctx context.Context, pod *corev1.Pod, ref CertificateProjection, lg *slog.Logger) (*credential, error) {
	priv, stub, err := newCertificateKey(ref.KeyType)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pemKey(priv)
	if err != nil {
		return nil, err
	}
	call, cancel := context.WithTimeout(ctx, certCallTimeout)
	out, err := c.src.CreatePodCertificate(call, pod, ref, stub, certWait)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("creating a PodCertificateRequest: %w", err)
	}
	lg.Debug("pod certificate requested", "request", out.Request)
	for out.State == CertificatePending {
		call, cancel := context.WithTimeout(ctx, certCallTimeout)
		next, err := c.src.WaitPodCertificate(call, pod, out.Request, certWait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ErrNotFound):
			return nil, fmt.Errorf("PodCertificateRequest %s/%s is gone", pod.Namespace, out.Request)
		case err != nil:
			// The server may be away: wait for it, for the same request.
			lg.Debug("waiting for a pod certificate", "request", out.Request, "err", err)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		out = next
	}
	name := pod.Namespace + "/" + out.Request
	switch out.State {
	case CertificateDenied:
		c.event(pod, corev1.EventTypeWarning, EventCertificateDenied,
			fmt.Sprintf("PodCertificateRequest %s was denied, reason=%q, message=%q", name, out.Reason, out.Message))
		return nil, fmt.Errorf("PodCertificateRequest %s was denied: reason=%q message=%q", name, out.Reason, out.Message)
	case CertificateFailed:
		c.event(pod, corev1.EventTypeWarning, EventCertificateFailed,
			fmt.Sprintf("PodCertificateRequest %s failed, reason=%q, message=%q", name, out.Reason, out.Message))
		return nil, fmt.Errorf("PodCertificateRequest %s failed: reason=%q message=%q", name, out.Reason, out.Message)
	}
	chain := cleanChain(out.Chain)
	if len(chain) == 0 {
		return nil, fmt.Errorf("PodCertificateRequest %s was issued without a certificate", name)
	}
	return &credential{key: keyPEM, chain: chain, refreshAt: out.BeginRefreshAt.Add(refreshJitter(out.BeginRefreshAt, out.NotAfter)), notAfter: out.NotAfter}, nil
}

// refreshJitter is a random delay after beginRefreshAt, under
// certMaxJitter and under half the time left to notAfter.
func refreshJitter(begin, notAfter time.Time) time.Duration {
	limit := min(certMaxJitter, notAfter.Sub(begin)/2)
	if limit <= 0 {
		return 0
	}
	return mathrand.N(limit)
}

// newCertificateKey makes a private key of keyType, a podCertificate
// projection's, and the stub PKCS#10 request signed with it that a
// PodCertificateRequest carries as proof that the node holds the key.
func newCertificateKey(keyType string) (crypto.Signer, []byte, error) {
	var key crypto.Signer
	var err error
	switch keyType {
	case "RSA3072":
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case "RSA4096":
		key, err = rsa.GenerateKey(rand.Reader, 4096)
	case "ECDSAP256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ECDSAP384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ECDSAP521":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "ED25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("unknown key type %q", keyType)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generating a %s key: %w", keyType, err)
	}
	stub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the stub request: %w", err)
	}
	return key, stub, nil
}

// pemKey is key as a PEM "PRIVATE KEY" (PKCS#8).
func pemKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// cleanChain is the PEM blocks of chain as CERTIFICATE blocks without
// headers, and nothing between them, as the kubelet writes a chain.
func cleanChain(chain []byte) []byte {
	var out bytes.Buffer
	rest := chain
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out.Bytes()
		}
		pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
	}
}

// certificateFiles adds the files of the podCertificate projection at
// index source of volume: the key followed by the chain at
// credentialBundlePath, the key at keyPath, the chain at
// certificateChainPath. A node without a CertificateSource cannot fill
// it.
func (m *Manager) certificateFiles(out map[string]volumeFile, pod *corev1.Pod, volume string, source int, p *corev1.PodCertificateProjection, def *int32) error {
	if m.certs == nil {
		return errors.New("this node does not issue pod certificates")
	}
	key, chain, err := m.certs.get(pod, volume, source, p)
	if err != nil {
		return err
	}
	mode := fileMode(nil, def)
	if fsGroup(pod) != nil {
		// As the kubelet: the owner reads it, the fsGroup is added after.
		mode = 0o600
	}
	if p.CredentialBundlePath != "" {
		bundle := append(append([]byte{}, key...), chain...)
		out[p.CredentialBundlePath] = volumeFile{data: bundle, mode: mode}
	}
	if p.KeyPath != "" {
		out[p.KeyPath] = volumeFile{data: key, mode: mode}
	}
	if p.CertificateChainPath != "" {
		out[p.CertificateChainPath] = volumeFile{data: chain, mode: mode}
	}
	return nil
}
