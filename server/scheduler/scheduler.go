package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/minik-dev/minik/server/record"
)

// Binder writes a binding. It must fail as a POST of pods/NAME/binding
// would: a Conflict when the pod is bound or being deleted, NotFound when
// it is gone.
type Binder interface {
	Bind(ctx context.Context, b *corev1.Binding) error
}

// BindFunc adapts a function to a Binder.
type BindFunc func(ctx context.Context, b *corev1.Binding) error

// Bind calls f.
func (f BindFunc) Bind(ctx context.Context, b *corev1.Binding) error { return f(ctx, b) }

// Name is the scheduler name pods ask for (spec.schedulerName) and the
// component its events come from.
const Name = corev1.DefaultSchedulerName

// EventRecorder records events about objects without blocking; it must be
// safe for concurrent use. record.Recorder and client-go's
// record.EventRecorder satisfy it.
type EventRecorder interface {
	Eventf(obj runtime.Object, eventType, reason, format string, args ...any)
}

// The scheduler's own event recorder keeps up with a burst of bindings
// (one Scheduled event each) without dropping: 10,000 pods bound in about
// ten seconds all get their event. Fewer writers than binders let events
// trail a burst instead of competing with the bindings.
const (
	eventWriters   = 8
	eventQueueSize = 16384
)

// Options tune a Scheduler; zero values pick the defaults.
type Options struct {
	// Recorder records Scheduled and FailedScheduling events. Nil: the
	// scheduler writes them through its client with several writers, so
	// that a Scheduled event per pod keeps up with 1,000 bindings/s.
	Recorder EventRecorder
	// Binder writes bindings; default a POST of pods/NAME/binding
	// through the client. An in-process API can bind without a request.
	Binder Binder
	// Binders is the number of concurrent API writers (bindings and
	// status updates); default 64. Bindings wait for the store's group
	// commit, so throughput grows with their number.
	Binders int
	// InitialBackoff and MaxBackoff bound the per-pod wait between
	// attempts; default 1 s doubling to 10 s.
	InitialBackoff, MaxBackoff time.Duration
	// RetryUnschedulable is how long an unschedulable pod waits for a
	// cluster change before it is tried anyway; default 60 s.
	RetryUnschedulable time.Duration
	// PercentageOfNodesToScore is the share of nodes to find feasible
	// before scoring in clusters of 100 nodes or more; 0 adapts to the
	// cluster size (50% minus 1% per 125 nodes, at least 5%), 100 scores all.
	PercentageOfNodesToScore int
}

func (o *Options) setDefaults() {
	if o.Binders <= 0 {
		o.Binders = 64
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.RetryUnschedulable <= 0 {
		o.RetryUnschedulable = time.Minute
	}
}

// Scheduler assigns pending pods to nodes. Create it with New, then call
// Run.
type Scheduler struct {
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	pods    toolscache.SharedIndexInformer
	nodes   toolscache.SharedIndexInformer
	claims  corelisters.PersistentVolumeClaimLister
	// claimsSynced and budgetsSynced tell when the claims and
	// PodDisruptionBudgets informers have listed.
	claimsSynced, budgetsSynced toolscache.InformerSynced
	lg                          *slog.Logger
	opts                        Options
	cache                       *cache
	queue                       *queue
	selector                    *selector
	events                      *record.Recorder // nil when opts.Recorder is set
	tasks                       chan func(context.Context)
}

// New returns a scheduler that reads pods and nodes from factory's
// informers and writes bindings, pod status and events through client.
// It registers its informers with factory, which other components may
// share; Run starts them if the caller has not.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, lg *slog.Logger, opts Options) (*Scheduler, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	opts.setDefaults()
	s := &Scheduler{
		client:  client,
		factory: factory,
		pods:    factory.Core().V1().Pods().Informer(),
		nodes:   factory.Core().V1().Nodes().Informer(),
		lg:      lg.With("component", "scheduler"),
		opts:    opts,
		cache:   newCache(),
		queue:   newQueue(opts.InitialBackoff, opts.MaxBackoff, opts.RetryUnschedulable),
		tasks:   make(chan func(context.Context), 4*opts.Binders),
	}
	budgets := factory.Policy().V1().PodDisruptionBudgets()
	s.budgetsSynced = budgets.Informer().HasSynced
	s.selector = &selector{cache: s.cache, budgets: budgets.Lister(), percent: opts.PercentageOfNodesToScore}
	if opts.Binder == nil {
		s.opts.Binder = BindFunc(func(ctx context.Context, b *corev1.Binding) error {
			return client.CoreV1().Pods(b.Namespace).Bind(ctx, b, metav1.CreateOptions{})
		})
	}
	if opts.Recorder == nil {
		s.events = record.New(client, Name, s.lg, record.Options{Writers: eventWriters, QueueSize: eventQueueSize})
		s.opts.Recorder = s.events
	}
	// The factory may be shared with controllers that want periodic
	// resyncs; the scheduler reacts to changes only.
	if _, err := s.pods.AddEventHandlerWithResyncPeriod(toolscache.ResourceEventHandlerFuncs{
		AddFunc: s.onPodAdd, UpdateFunc: s.onPodUpdate, DeleteFunc: s.onPodDelete,
	}, 0); err != nil {
		return nil, err
	}
	if _, err := s.nodes.AddEventHandlerWithResyncPeriod(toolscache.ResourceEventHandlerFuncs{
		AddFunc: s.onNodeAdd, UpdateFunc: s.onNodeUpdate, DeleteFunc: s.onNodeDelete,
	}, 0); err != nil {
		return nil, err
	}
	// A claim made, bound or gone may let waiting pods in.
	claims := factory.Core().V1().PersistentVolumeClaims()
	s.claims = claims.Lister()
	reg, err := claims.Informer().AddEventHandlerWithResyncPeriod(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.queue.moveAll() },
		UpdateFunc: func(any, any) { s.queue.moveAll() },
		DeleteFunc: func(any) { s.queue.moveAll() },
	}, 0)
	if err != nil {
		return nil, err
	}
	s.claimsSynced = reg.HasSynced
	return s, nil
}

// Run schedules pods until ctx ends. It returns after its goroutines have
// exited; the error is nil when ctx ended.
func (s *Scheduler) Run(ctx context.Context) error {
	s.factory.Start(ctx.Done())
	if !toolscache.WaitForCacheSync(ctx.Done(), s.pods.HasSynced, s.nodes.HasSynced, s.claimsSynced, s.budgetsSynced) {
		return ctx.Err()
	}
	s.lg.Info("scheduler started", "binders", s.opts.Binders)
	g, gctx := errgroup.WithContext(ctx)
	for range s.opts.Binders {
		g.Go(func() error { return s.runTasks(gctx) })
	}
	if s.events != nil {
		g.Go(func() error { return s.events.Run(gctx) })
	}
	g.Go(func() error { return s.flushLoop(gctx) })
	g.Go(func() error { return s.scheduleLoop(gctx) })
	err := g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	return err
}

// flushLoop ends back-offs and retries long-unschedulable pods.
func (s *Scheduler) flushLoop(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.queue.flush()
		}
	}
}

// runTasks runs API writes handed over by the scheduling loop.
func (s *Scheduler) runTasks(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case task := <-s.tasks:
			task(ctx)
		}
	}
}

// enqueueTask hands an API write to the binders, waiting while they are
// all busy. It reports false when ctx ended.
func (s *Scheduler) enqueueTask(ctx context.Context, task func(context.Context)) bool {
	select {
	case s.tasks <- task:
		return true
	case <-ctx.Done():
		return false
	}
}
