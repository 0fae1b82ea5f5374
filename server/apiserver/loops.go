package apiserver

import (
	"context"
	"time"

	"github.com/minik-dev/minik/store"
)

// Run runs the server's own control loops until ctx ends, in one
// goroutine that owns their state: namespace deletion (nsLoop), quota
// accounting (quotaLoop), serving and deleting custom resources (crdLoop)
// and the expiry of the caches of recent changes.
// Both loops learn of changes from one watch of the whole registry, which
// also keeps the policy index. It returns when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	r := &loops{
		s:      s,
		ns:     &nsLoop{s: s, pending: map[string]bool{}, dirty: map[string]bool{}},
		quotas: &quotaLoop{s: s, withQuota: map[string]bool{}, dirty: map[string]bool{}},
		crds:   newCRDLoop(s),
		apis:   &apiServicePasses{s: s, done: make(chan error, 1)},
	}
	defer r.stopWatch()
	nsResync := time.NewTicker(nsResyncInterval)
	defer nsResync.Stop()
	quotaResync := time.NewTicker(quotaResyncInterval)
	defer quotaResync.Stop()
	expire := time.NewTicker(cacheExpiryInterval)
	defer expire.Stop()
	r.ns.scan(ctx)
	r.crds.scan(ctx)
	r.crds.work(ctx)
	// APIService passes start once the stored definitions are served,
	// so that the first does not take their APIServices for stale ones.
	apiResync := time.NewTicker(apiServiceResync)
	defer apiResync.Stop()
	defer r.apis.wait()
	r.apis.start(ctx)
	for {
		if r.changes == nil && r.rewatch == nil {
			r.startWatch(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		r.ns.work(ctx)
		r.quotas.work(ctx)
		r.crds.work(ctx)
		select {
		case <-ctx.Done():
			return nil
		case name := <-s.nsQueue:
			r.ns.mark(name)
		case ev, ok := <-r.changes:
			r.drain(ev, ok)
		case <-r.ns.retry:
			r.ns.retry = nil
			r.ns.redo()
		case <-r.crds.retry:
			r.crds.redo()
		case <-s.apiServiceKick:
			r.apis.start(ctx)
		case <-apiResync.C:
			r.apis.start(ctx)
		case err := <-r.apis.done:
			r.apis.finished(ctx, err)
		case <-r.rewatch:
			r.rewatch = nil
		case <-nsResync.C:
			r.ns.scan(ctx)
		case <-quotaResync.C:
			r.quotas.rescan(ctx)
		case now := <-expire.C:
			s.expireCaches(now.Add(-cacheAge))
		}
	}
}

const (
	// nsResyncInterval is how often Run looks for terminating namespaces
	// it was not told of (marked by another server, or before a restart).
	// Within one server, deletes and changes of content trigger it.
	nsResyncInterval = time.Minute
	// nsRetryDelay is the wait before a pass that failed, or a watch
	// that could not start, is tried again.
	nsRetryDelay = time.Second
	// cacheExpiryInterval is how often the caches of recent changes let
	// go of those older than cacheAge.
	cacheExpiryInterval = 5 * time.Second
)

// loops is Run's state.
type loops struct {
	s       *Server
	ns      *nsLoop
	quotas  *quotaLoop
	crds    *crdLoop
	apis    *apiServicePasses
	changes <-chan store.Event // the watch of every key; nil while down
	stop    context.CancelFunc // ends the watch
	rewatch <-chan time.Time   // set while waiting to start the watch again
}

// startWatch starts the watch of every key; until it runs, the policy
// index makes creates read the store. Everything is looked at again,
// since what happened while there was no watch is not known.
func (r *loops) startWatch(ctx context.Context) {
	r.s.policies.unready()
	r.s.admissionCache.unready()
	ch, stop, err := r.s.watchAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.s.log.Warn("watching the registry", "err", err)
		}
		r.rewatch = time.After(nsRetryDelay)
		return
	}
	r.changes, r.stop = ch, stop
	r.ns.redo()
	r.quotas.rescan(ctx)
	r.crds.scan(ctx)
}

func (r *loops) stopWatch() {
	if r.stop != nil {
		r.stop()
	}
	r.changes, r.stop = nil, nil
}

// drain applies ev and the events already queued behind it, so that a
// burst leads to one pass per namespace, not one per event. An ended
// watch is dropped, to be started again.
func (r *loops) drain(ev store.Event, ok bool) {
	for {
		if !ok || ev.Type == store.EventError {
			r.s.admissionCache.unready()
			r.stopWatch()
			return
		}
		r.s.policies.observe(ev)
		r.s.admissionCache.observe(ev)
		r.ns.observe(ev)
		r.quotas.observe(ev)
		r.crds.observe(ev)
		r.s.observeAPIService(ev)
		select {
		case ev, ok = <-r.changes:
		default:
			return
		}
	}
}
