package apiserver

import (
	"context"
	"strings"
	"sync"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// policyResources are the kinds whose presence in a namespace makes its
// creates read them: LimitRanges and ResourceQuotas.
var policyResources = []string{"limitranges", "resourcequotas"}

// policyIndex knows which namespaces hold LimitRanges or ResourceQuotas,
// so that creates in the others (nearly all) skip reading them. It is
// filled from a list and kept by the quota controller's watch of the
// whole registry, and told at once of the policies this server stores,
// so a create that follows a policy's create here always sees it (other
// servers learn it from their watch, as Kubernetes' admission learns it
// from its informers). Until it is filled, creates read the store.
type policyIndex struct {
	mu    sync.Mutex
	ready bool
	names map[string]map[string]bool // guarded by mu; "RESOURCE/NAMESPACE" → names
}

// mayHave reports whether namespace ns may hold objects of resource (one
// of policyResources): true unless the index is ready and knows none.
func (p *policyIndex) mayHave(resource, ns string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.ready || len(p.names[resource+"/"+ns]) > 0
}

// setLocked records that resource ns/name exists (or not).
// p.mu must be held.
func (p *policyIndex) setLocked(resource, ns, name string, exists bool) {
	if p.names == nil {
		p.names = map[string]map[string]bool{}
	}
	k := resource + "/" + ns
	if !exists {
		delete(p.names[k], name)
		return
	}
	if p.names[k] == nil {
		p.names[k] = map[string]bool{}
	}
	p.names[k][name] = true
}

// stored records a policy object this server has just stored.
func (p *policyIndex) stored(resource, ns, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(resource, ns, name, true)
}

// observe applies one watch event of any key.
func (p *policyIndex) observe(ev store.Event) {
	parts := strings.SplitN(ev.Key, "/", 5) // "", registry, RESOURCE, NAMESPACE, NAME
	if len(parts) != 5 || (parts[2] != "limitranges" && parts[2] != "resourcequotas") {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(parts[2], parts[3], parts[4], ev.Type != store.EventDelete)
}

// unready makes creates read the store again, while the watch that keeps
// the index is down.
func (p *policyIndex) unready() {
	p.mu.Lock()
	p.ready = false
	p.mu.Unlock()
}

// load fills the index from the store as of revision rev, from which
// the watch that keeps it runs.
func (p *policyIndex) load(ctx context.Context, st store.Store, rev int64) error {
	names := map[string]map[string]bool{}
	for _, res := range policyResources {
		kvs, _, err := st.List(ctx, registry.StoragePrefix(res), rev)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			parts := strings.SplitN(kv.Key, "/", 5)
			if len(parts) != 5 {
				continue
			}
			k := res + "/" + parts[3]
			if names[k] == nil {
				names[k] = map[string]bool{}
			}
			names[k][parts[4]] = true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Objects stored here since rev are in the watch to come; keep what
	// stored recorded meanwhile too.
	for k, set := range p.names {
		for n := range set {
			if names[k] == nil {
				names[k] = map[string]bool{}
			}
			names[k][n] = true
		}
	}
	p.names, p.ready = names, true
	return nil
}
