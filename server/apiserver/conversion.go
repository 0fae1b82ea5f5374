package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/admission"
	"github.com/minik-dev/minik/server/registry"
)

// A definition with conversion strategy Webhook has its objects converted
// by its webhook whenever one is read in a version other than the one it
// is stored in, and before one written in a version other than the
// storage version is stored. The webhook gets a ConversionReview of the
// version it accepts first (apiextensions.k8s.io/v1 or v1beta1, the same
// shape) and must answer with the request's uid, a Success result and
// one object per object sent, in the desired version, of the same kind,
// name, namespace and uid. The metadata of a converted object is the
// original's but for its labels and annotations, which the webhook may
// change, as upstream's converter does. A failure is a 500 Internal Error
// carrying the webhook's message.

// conversionReviewVersions are the ConversionReview versions minik sends.
var conversionReviewVersions = []string{"v1", "v1beta1"}

// maxConversionResponseBytes bounds a conversion webhook's answer.
const maxConversionResponseBytes = 3 << 20

// webhookConverter calls the conversion webhook of one definition. It is
// safe for concurrent use.
type webhookConverter struct {
	kind          string // the definition's kind, for messages
	reviewVersion string // "v1" or "v1beta1"
	url           string
	client        *http.Client
	// broken is why the webhook cannot be called (a bad caBundle): every
	// conversion fails with it.
	broken error
}

var _ registry.Converter = (*webhookConverter)(nil)

// newConverter returns the converter of crd: nil for strategy None.
func (s *Server) newConverter(crd *apiextensionsv1.CustomResourceDefinition) registry.Converter {
	conv := crd.Spec.Conversion
	if conv == nil || conv.Strategy != apiextensionsv1.WebhookConverter || conv.Webhook == nil {
		return nil
	}
	c := &webhookConverter{kind: crd.Spec.Names.Kind}
	for _, v := range conv.Webhook.ConversionReviewVersions {
		if slices.Contains(conversionReviewVersions, v) {
			c.reviewVersion = v
			break
		}
	}
	if c.reviewVersion == "" {
		c.broken = fmt.Errorf("the webhook accepts none of the ConversionReview versions v1, v1beta1 (it accepts %v)",
			conv.Webhook.ConversionReviewVersions)
		return c
	}
	cc := conv.Webhook.ClientConfig
	if cc == nil {
		c.broken = errors.New("spec.conversion.webhook.clientConfig is not set")
		return c
	}
	acc := admissionregistrationv1.WebhookClientConfig{URL: cc.URL, CABundle: cc.CABundle}
	if cc.Service != nil {
		acc.Service = &admissionregistrationv1.ServiceReference{
			Namespace: cc.Service.Namespace, Name: cc.Service.Name, Path: cc.Service.Path, Port: cc.Service.Port,
		}
	}
	var dialer admission.ServiceDialer
	if d, ok := s.cfg.PodStreams.(PodDialer); ok {
		dialer = serviceDialer{s, d}
	}
	c.url, c.client, c.broken = admission.WebhookClient(acc, dialer)
	return c
}

// Convert sends u to the webhook and returns the object it answers with,
// checked and with u's metadata but for labels and annotations. A failure
// is a 500 Internal Error Status, worded as upstream's.
func (c *webhookConverter) Convert(ctx context.Context, u *unstructured.Unstructured, apiVersion string) (*unstructured.Unstructured, error) {
	gvk := u.GroupVersionKind()
	out, err := c.convert(ctx, u, apiVersion)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("conversion webhook for %s failed: %w", gvk, err))
	}
	return out, nil
}

func (c *webhookConverter) convert(ctx context.Context, u *unstructured.Unstructured, apiVersion string) (*unstructured.Unstructured, error) {
	if c.broken != nil {
		return nil, c.broken
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	review := &apiextensionsv1.ConversionReview{Request: &apiextensionsv1.ConversionRequest{
		UID: uuid.NewUUID(), DesiredAPIVersion: apiVersion, Objects: []runtime.RawExtension{{Raw: raw}},
	}}
	review.APIVersion, review.Kind = "apiextensions.k8s.io/"+c.reviewVersion, "ConversionReview"
	resp, err := c.post(ctx, review)
	if err != nil {
		return nil, err
	}
	return checkConverted(resp, review.Request, u, apiVersion)
}

// post sends review and decodes the answer.
func (c *webhookConverter) post(ctx context.Context, review *apiextensionsv1.ConversionReview) (*apiextensionsv1.ConversionReview, error) {
	body, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxConversionResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the server responded %s", resp.Status)
	}
	if len(data) > maxConversionResponseBytes {
		return nil, errors.New("the response is larger than 3 MiB")
	}
	out := &apiextensionsv1.ConversionReview{}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("decoding the response: %w", err)
	}
	if want := review.APIVersion; out.APIVersion != want || out.Kind != "ConversionReview" {
		return nil, fmt.Errorf("expected webhook response of %s, Kind=ConversionReview, got %s, Kind=%s", want, out.APIVersion, out.Kind)
	}
	return out, nil
}

// checkConverted checks the webhook's answer to req about in and returns
// the converted object, with in's metadata but for labels and
// annotations.
func checkConverted(review *apiextensionsv1.ConversionReview, req *apiextensionsv1.ConversionRequest, in *unstructured.Unstructured, apiVersion string) (*unstructured.Unstructured, error) {
	resp := review.Response
	if resp == nil {
		return nil, errors.New("no response provided")
	}
	if resp.UID != req.UID {
		return nil, fmt.Errorf("expected response.uid=%q, got %q", req.UID, resp.UID)
	}
	if resp.Result.Status != "Success" {
		if resp.Result.Message != "" {
			return nil, errors.New(resp.Result.Message)
		}
		return nil, fmt.Errorf("response.result.status was %q, not \"Success\"", resp.Result.Status)
	}
	if n := len(resp.ConvertedObjects); n != 1 {
		return nil, fmt.Errorf("returned %d objects, expected 1", n)
	}
	out := &unstructured.Unstructured{}
	if err := registry.UnmarshalCustom(resp.ConvertedObjects[0].Raw, out); err != nil {
		return nil, fmt.Errorf("returned an invalid converted object: %w", err)
	}
	if got := out.GetAPIVersion(); got != apiVersion {
		return nil, fmt.Errorf("returned an invalid converted object: invalid groupVersion (expected %s, received %s)", apiVersion, got)
	}
	if err := sameIdentity(in, out); err != nil {
		return nil, fmt.Errorf("returned an invalid converted object: %w", err)
	}
	if err := restoreMetadata(in, out); err != nil {
		return nil, fmt.Errorf("returned invalid metadata in the converted object: %w", err)
	}
	return out, nil
}

// sameIdentity checks that out is in: same kind, name, namespace and uid.
func sameIdentity(in, out *unstructured.Unstructured) error {
	for _, f := range []struct{ field, in, out string }{
		{"kind", in.GetKind(), out.GetKind()},
		{"name", in.GetName(), out.GetName()},
		{"namespace", in.GetNamespace(), out.GetNamespace()},
		{"UID", string(in.GetUID()), string(out.GetUID())},
	} {
		if f.in != f.out {
			return fmt.Errorf("must have the same %s: %q != %q", f.field, f.in, f.out)
		}
	}
	return nil
}

// restoreMetadata gives out in's metadata, keeping out's labels and
// annotations, which must be valid.
func restoreMetadata(in, out *unstructured.Unstructured) error {
	m, ok := out.Object["metadata"].(map[string]interface{})
	if !ok {
		return fmt.Errorf("metadata of type %T", out.Object["metadata"])
	}
	meta, _ := runtime.DeepCopyJSONValue(in.Object["metadata"]).(map[string]interface{})
	if meta == nil {
		meta = map[string]interface{}{}
	}
	path := field.NewPath("metadata")
	for _, f := range []string{"labels", "annotations"} {
		v, found := m[f]
		if !found || v == nil {
			delete(meta, f)
			continue
		}
		got, ok := v.(map[string]interface{})
		if !ok {
			return fmt.Errorf("metadata.%s of type %T", f, v)
		}
		if apiequality.Semantic.DeepEqual(meta[f], got) {
			continue
		}
		strs := make(map[string]string, len(got))
		for k, s := range got {
			str, ok := s.(string)
			if !ok {
				return fmt.Errorf("metadata.%s[%q] of type %T", f, k, s)
			}
			strs[k] = str
		}
		var errs field.ErrorList
		if f == "labels" {
			errs = metav1validation.ValidateLabels(strs, path.Child(f))
		} else {
			errs = apivalidation.ValidateAnnotations(strs, path.Child(f))
		}
		if len(errs) > 0 {
			return errs.ToAggregate()
		}
		meta[f] = got
	}
	out.Object["metadata"] = meta
	return nil
}
