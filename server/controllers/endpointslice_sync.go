package controllers

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reconcile turns the Service key's slices (existing, from the cache)
// into want: a wanted slice takes the place of an existing one of the
// same address type and ports (updated if it differs), the others are
// created, and existing slices left over are deleted. Slices of other
// managers are not touched.
func (c *EndpointSliceController) reconcile(ctx context.Context, key, ns string, want, existing []*discoveryv1.EndpointSlice) error {
	spare := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if managedHere(s) {
			k := sliceKey(s)
			spare[k] = append(spare[k], s)
		}
	}
	for _, list := range spare {
		slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	}
	api := c.client.DiscoveryV1().EndpointSlices(ns)
	var errs []error
	for _, w := range want {
		k := sliceKey(w)
		if list := spare[k]; len(list) > 0 {
			spare[k] = list[1:]
			errs = append(errs, c.updateSlice(ctx, key, list[0], w))
			continue
		}
		out, err := api.Create(ctx, w, metav1.CreateOptions{})
		if err == nil {
			c.tracker.wrote(key, out.Name, out.ResourceVersion)
		}
		errs = append(errs, err)
	}
	for _, k := range sortedKeys(spare) {
		for _, s := range spare[k] {
			err := api.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
			if err == nil {
				c.tracker.deleted(key, s.Name)
			}
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				err = nil
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// updateSlice makes cur (from the cache) say what w says, if it does not.
func (c *EndpointSliceController) updateSlice(ctx context.Context, key string, cur, w *discoveryv1.EndpointSlice) error {
	if apiequality.Semantic.DeepEqual(cur.Endpoints, w.Endpoints) && apiequality.Semantic.DeepEqual(cur.Ports, w.Ports) &&
		apiequality.Semantic.DeepEqual(cur.Labels, w.Labels) && apiequality.Semantic.DeepEqual(cur.OwnerReferences, w.OwnerReferences) {
		return nil
	}
	out := cur.DeepCopy()
	out.Endpoints, out.Ports, out.Labels, out.OwnerReferences = w.Endpoints, w.Ports, w.Labels, w.OwnerReferences
	got, err := c.client.DiscoveryV1().EndpointSlices(cur.Namespace).Update(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	c.tracker.wrote(key, got.Name, got.ResourceVersion)
	return nil
}

// sliceKey is what makes one slice replaceable by another: address type
// and ports (both fixed for a slice's content).
func sliceKey(s *discoveryv1.EndpointSlice) string {
	return string(s.AddressType) + "|" + slicePortsSignature(s.Ports)
}

// sliceTracker remembers, per Service key, the slices the controller
// wrote or deleted that its cache may not show yet. While the cache is
// behind, a sync would act on slices that are no longer there (and create
// duplicates), so it waits for the informer events instead. Safe for
// concurrent use.
type sliceTracker struct {
	mu sync.Mutex                  // guards m
	m  map[string]map[string]int64 // Service key → slice name → resourceVersion written, 0 when deleted
}

func newSliceTracker() *sliceTracker {
	return &sliceTracker{m: map[string]map[string]int64{}}
}

func (t *sliceTracker) wrote(key, name, rv string) {
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n <= 0 {
		return
	}
	t.set(key, name, n)
}

func (t *sliceTracker) deleted(key, name string) { t.set(key, name, 0) }

func (t *sliceTracker) set(key, name string, rv int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[key] == nil {
		t.m[key] = map[string]int64{}
	}
	t.m[key][name] = rv
}

// observedDeletion drops what is known of a slice once the informer saw
// it deleted (by anyone), so a slice deleted behind the controller's back
// does not keep its Service waiting.
func (t *sliceTracker) observedDeletion(key, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m[key], name)
	if len(t.m[key]) == 0 {
		delete(t.m, key)
	}
}

// stale reports whether cached (key's slices in the cache) misses a
// write of the controller; writes the cache shows are forgotten.
func (t *sliceTracker) stale(key string, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	written := t.m[key]
	if len(written) == 0 {
		return false
	}
	seen := make(map[string]int64, len(cached))
	for _, s := range cached {
		n, _ := strconv.ParseInt(s.ResourceVersion, 10, 64)
		seen[s.Name] = n
	}
	for name, rv := range written {
		have, ok := seen[name]
		if (rv == 0 && !ok) || (rv > 0 && ok && have >= rv) {
			delete(written, name)
		}
	}
	if len(written) == 0 {
		delete(t.m, key)
		return false
	}
	return true
}
