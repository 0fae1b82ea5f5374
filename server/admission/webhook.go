package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/minik-dev/minik/server/celexpr"
)

// urlIdleTimeout is how long a url webhook's idle connection is kept.
const urlIdleTimeout = 30 * time.Second

// maxResponseBytes bounds a webhook's response, as Kubernetes' 3 MiB
// request limit bounds what it would store.
const maxResponseBytes = 3 << 20

// ServiceDialer connects to a Service's webhook: to port (a port of the
// Service) of one of its ready endpoints.
type ServiceDialer interface {
	DialService(ctx context.Context, namespace, name string, port int32) (net.Conn, error)
}

// webhook is one webhook of a configuration, compiled.
type webhook struct {
	name          string
	config        string // the configuration's name
	rules         []admissionregistrationv1.RuleWithOperations
	failurePolicy admissionregistrationv1.FailurePolicyType
	sideEffects   admissionregistrationv1.SideEffectClass
	timeout       time.Duration
	reviewVersion string // "v1" or "v1beta1"
	reinvoke      bool   // reinvocationPolicy IfNeeded (mutating only)
	selectors     selectors
	conditions    []condition
	url           string
	client        *http.Client
	// broken is why the webhook cannot be called (a bad caBundle); every
	// matching request then meets its failurePolicy.
	broken error
}

// webhookSpec is what the two webhook types share.
type webhookSpec struct {
	config, name   string
	cc             admissionregistrationv1.WebhookClientConfig
	rules          []admissionregistrationv1.RuleWithOperations
	failurePolicy  *admissionregistrationv1.FailurePolicyType
	sideEffects    *admissionregistrationv1.SideEffectClass
	timeoutSeconds *int32
	reviewVersions []string
	nsSel, objSel  *metav1.LabelSelector
	conditions     []admissionregistrationv1.MatchCondition
	reinvoke       bool
}

// compileWebhook prepares a webhook for calls. An error in what
// validation should have refused (stored by an older server) makes the
// webhook broken rather than dropping it.
func compileWebhook(s webhookSpec, dialer ServiceDialer) *webhook {
	w := &webhook{
		name: s.name, config: s.config, rules: s.rules, reinvoke: s.reinvoke,
		failurePolicy: admissionregistrationv1.Fail, sideEffects: admissionregistrationv1.SideEffectClassUnknown,
		timeout: 10 * time.Second, reviewVersion: "v1",
	}
	if s.failurePolicy != nil {
		w.failurePolicy = *s.failurePolicy
	}
	if s.sideEffects != nil {
		w.sideEffects = *s.sideEffects
	}
	if s.timeoutSeconds != nil {
		w.timeout = time.Duration(*s.timeoutSeconds) * time.Second
	}
	if !slices.Contains(s.reviewVersions, "v1") && slices.Contains(s.reviewVersions, "v1beta1") {
		w.reviewVersion = "v1beta1"
	}
	var err error
	if w.selectors, err = compileSelectors(s.nsSel, s.objSel); err != nil {
		w.broken = err
		return w
	}
	if w.conditions, err = compileConditions(s.conditions, celexpr.WebhookScope); err != nil {
		w.broken = err
		return w
	}
	w.url, w.client, w.broken = WebhookClient(s.cc, dialer)
	return w
}

// WebhookClient returns the URL to post to and a client that verifies
// the webhook's certificate against the caBundle; a Service webhook is
// reached through dialer. The conversion webhooks of custom resources are
// reached the same way.
func WebhookClient(cc admissionregistrationv1.WebhookClientConfig, dialer ServiceDialer) (string, *http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cc.CABundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cc.CABundle) {
			return "", nil, errors.New("caBundle holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	// A url webhook keeps its connections between calls (idle ones close
	// after urlIdleTimeout); one behind a Service dials each time, so that
	// every call goes to a ready endpoint of the moment.
	tr := &http.Transport{TLSClientConfig: tc, IdleConnTimeout: urlIdleTimeout, ForceAttemptHTTP2: false}
	var target string
	switch {
	case cc.URL != nil:
		target = *cc.URL
	case cc.Service != nil:
		svc := cc.Service
		port := int32(443)
		if svc.Port != nil {
			port = *svc.Port
		}
		host := svc.Name + "." + svc.Namespace + ".svc"
		target = "https://" + net.JoinHostPort(host, strconv.Itoa(int(port)))
		if svc.Path != nil {
			target += *svc.Path
		}
		if dialer == nil {
			return "", nil, errors.New("no service dialer to reach service webhooks")
		}
		tr.DisableKeepAlives = true
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialService(ctx, svc.Namespace, svc.Name, port)
		}
	default:
		return "", nil, errors.New("neither url nor service is set")
	}
	if _, err := url.Parse(target); err != nil {
		return "", nil, err
	}
	// A webhook answers where it was asked: a redirect is an error.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return target, &http.Client{Transport: tr, CheckRedirect: noRedirect}, nil
}

// callError is a failure to get an answer from a webhook (as opposed to a
// denial), which its failurePolicy decides.
type callError struct {
	webhook string
	err     error
}

func (e *callError) Error() string {
	return fmt.Sprintf("failed calling webhook %q: %v", e.webhook, e.err)
}

func (e *callError) Unwrap() error { return e.err }

// status is the error a failed call gives the request under
// failurePolicy Fail, as Kubernetes reports it: 500 Internal Error.
func (e *callError) status() error {
	return apierrors.NewInternalError(e)
}

// call sends a's review to w and returns its response. The response's
// uid must match; a webhook that cannot be reached, times out or answers
// badly gives a *callError.
func (w *webhook) call(ctx context.Context, a *Attributes) (*admissionv1.AdmissionResponse, error) {
	if w.broken != nil {
		return nil, &callError{w.name, w.broken}
	}
	review, err := w.review(a)
	if err != nil {
		return nil, &callError{w.name, err}
	}
	body, err := json.Marshal(review)
	if err != nil {
		return nil, &callError{w.name, err}
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	// The timeout rides along in the query, as Kubernetes sends it, so
	// that the webhook may give up in time too.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"?timeout="+w.timeout.String(), bytes.NewReader(body))
	if err != nil {
		return nil, &callError{w.name, err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, &callError{w.name, fmt.Errorf("failed to call webhook: %w", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, &callError{w.name, fmt.Errorf("reading the response: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &callError{w.name, fmt.Errorf("the server responded %s", resp.Status)}
	}
	if len(data) > maxResponseBytes {
		return nil, &callError{w.name, errors.New("the response is larger than 3 MiB")}
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, &callError{w.name, fmt.Errorf("decoding the response: %w", err)}
	}
	if out.Response == nil {
		return nil, &callError{w.name, errors.New("the response holds no AdmissionResponse")}
	}
	if out.Response.UID != review.Request.UID {
		return nil, &callError{w.name, fmt.Errorf("expected response.uid=%q, got %q", review.Request.UID, out.Response.UID)}
	}
	return out.Response, nil
}

// review builds the AdmissionReview of a for w.
func (w *webhook) review(a *Attributes) (*admissionv1.AdmissionReview, error) {
	obj, err := rawOf(a.Object, a.Kind)
	if err != nil {
		return nil, err
	}
	old, err := rawOf(a.OldObject, a.Kind)
	if err != nil {
		return nil, err
	}
	var opts runtime.RawExtension
	if a.Options != nil {
		b, err := json.Marshal(a.Options)
		if err != nil {
			return nil, err
		}
		opts.Raw = b
	}
	gvk := metav1.GroupVersionKind{Group: a.Kind.Group, Version: a.Kind.Version, Kind: a.Kind.Kind}
	gvr := metav1.GroupVersionResource{Group: a.Resource.Group, Version: a.Resource.Version, Resource: a.Resource.Resource}
	dry := a.DryRun
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/" + w.reviewVersion, Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: uuid.NewUUID(), Kind: gvk, Resource: gvr, SubResource: a.SubResource,
			RequestKind: &gvk, RequestResource: &gvr, RequestSubResource: a.SubResource,
			Name: a.Name, Namespace: a.Namespace, Operation: a.Operation, UserInfo: a.User,
			Object: obj, OldObject: old, DryRun: &dry, Options: opts,
		},
	}, nil
}

// denial is the error of a webhook's refusal: its Status, its message
// (else its reason) prefixed as Kubernetes does, 403 Forbidden unless it
// says otherwise.
func denial(name string, st *metav1.Status) error {
	out := metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden}
	msg := ""
	if st != nil {
		if st.Code != 0 {
			out.Code = st.Code
			out.Reason = ""
		}
		if st.Reason != "" {
			out.Reason = st.Reason
		}
		out.Details = st.Details
		msg = st.Message
		if msg == "" {
			// A refusal that gives only a reason is explained by it.
			msg = string(st.Reason)
		}
	}
	if msg == "" {
		out.Message = fmt.Sprintf("admission webhook %q denied the request without explanation", name)
	} else {
		out.Message = fmt.Sprintf("admission webhook %q denied the request: %s", name, msg)
	}
	return &apierrors.StatusError{ErrStatus: out}
}

// applies reports whether w is to be called for a, and whether it refuses
// the request outright (a dry run and side effects).
func (w *webhook) applies(ctx context.Context, a *Attributes, c *Chain, vars func() (map[string]any, error)) (bool, error) {
	if !anyRuleMatches(w.rules, a) {
		return false, nil
	}
	ok, err := w.selectors.matches(ctx, a, c.cfg.Namespaces)
	if err != nil {
		return w.failed(&callError{w.name, err})
	}
	if !ok {
		return false, nil
	}
	if len(w.conditions) > 0 {
		v, err := vars()
		if err != nil {
			return w.failed(&callError{w.name, err})
		}
		ok, err := conditionsMatch(ctx, w.conditions, v)
		if err != nil {
			return w.failed(&callError{w.name, err})
		}
		if !ok {
			return false, nil
		}
	}
	if a.DryRun && w.sideEffects != admissionregistrationv1.SideEffectClassNone && w.sideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun {
		return false, apierrors.NewBadRequest(fmt.Sprintf("admission webhook %q does not support dry run", w.name))
	}
	return true, nil
}

// failed applies w's failurePolicy to a call error: the request's error
// under Fail, nothing (the webhook is skipped) under Ignore.
func (w *webhook) failed(err *callError) (bool, error) {
	if w.failurePolicy == admissionregistrationv1.Ignore {
		return false, nil
	}
	return false, err.status()
}
