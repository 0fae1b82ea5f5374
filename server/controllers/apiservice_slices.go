package controllers

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SliceManagerAPIServer marks the EndpointSlices of the kubernetes
// Service, which the leader writes from the live servers (as
// kube-apiserver does; its Endpoints are not mirrored).
const SliceManagerAPIServer = "apiserver.minik.dev"

// apiServiceSlices are the EndpointSlices of the kubernetes Service for
// subsets: one per port and address family, the first named after the
// Service.
func apiServiceSlices(subsets []corev1.EndpointSubset) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	ready := true
	for _, ss := range subsets {
		byFamily := map[discoveryv1.AddressType][]discoveryv1.Endpoint{}
		for _, a := range ss.Addresses {
			t := discoveryv1.AddressTypeIPv4
			if ip, err := netip.ParseAddr(a.IP); err == nil && ip.Is6() {
				t = discoveryv1.AddressTypeIPv6
			}
			byFamily[t] = append(byFamily[t], discoveryv1.Endpoint{
				Addresses:  []string{a.IP},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready, Terminating: new(bool)},
			})
		}
		port := ss.Ports[0]
		for _, t := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			eps := byFamily[t]
			if len(eps) == 0 {
				continue
			}
			name := APIServiceName
			if len(out) > 0 {
				name = fmt.Sprintf("%s-%d-%s", APIServiceName, port.Port, map[discoveryv1.AddressType]string{
					discoveryv1.AddressTypeIPv4: "ipv4", discoveryv1.AddressTypeIPv6: "ipv6"}[t])
			}
			out = append(out, &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: APIServiceNamespace, Labels: map[string]string{
					discoveryv1.LabelServiceName: APIServiceName,
					discoveryv1.LabelManagedBy:   SliceManagerAPIServer,
				}},
				AddressType: t,
				Endpoints:   eps,
				Ports: []discoveryv1.EndpointPort{{
					Name: &port.Name, Port: &port.Port, Protocol: &port.Protocol,
				}},
			})
		}
	}
	return out
}

// syncEndpointSlices makes the kubernetes Service's EndpointSlices those
// of the live servers: creates, updates, and deletes the ones no longer
// wanted.
func (c *APIServiceController) syncEndpointSlices(ctx context.Context) error {
	slices := c.client.DiscoveryV1().EndpointSlices(APIServiceNamespace)
	sel := labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: APIServiceName,
		discoveryv1.LabelManagedBy:   SliceManagerAPIServer,
	})
	cur, err := slices.List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return err
	}
	have := map[string]*discoveryv1.EndpointSlice{}
	for i := range cur.Items {
		have[cur.Items[i].Name] = &cur.Items[i]
	}
	for _, want := range apiServiceSlices(serverSubsets(c.opts.Servers.Addresses())) {
		old, ok := have[want.Name]
		delete(have, want.Name)
		switch {
		case !ok:
			_, err = slices.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = nil // someone else's slice of that name: left alone
			}
		case old.AddressType != want.AddressType:
			if err = slices.Delete(ctx, old.Name, metav1.DeleteOptions{}); err == nil {
				_, err = slices.Create(ctx, want, metav1.CreateOptions{})
			}
		case !apiequality.Semantic.DeepEqual(old.Endpoints, want.Endpoints) || !apiequality.Semantic.DeepEqual(old.Ports, want.Ports):
			upd := old.DeepCopy()
			upd.Endpoints, upd.Ports = want.Endpoints, want.Ports
			_, err = slices.Update(ctx, upd, metav1.UpdateOptions{})
		}
		if err != nil {
			return err
		}
	}
	for name := range have {
		if err := slices.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
