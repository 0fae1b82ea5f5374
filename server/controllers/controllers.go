package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/informers"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/record"
)

// Config is what RunAll needs.
type Config struct {
	// Loopback is the API server's in-process client configuration
	// (apiserver.Server.ServeLoopback).
	Loopback *rest.Config
	// Logger may be nil.
	Logger *slog.Logger
	// Workers is the number of workers per controller (default 2); the
	// replication, ReplicaSet and Deployment controllers have at least
	// workloadWorkers.
	Workers int
	// ResyncPeriod is how often informers replay their whole cache to the
	// controllers (default 10 minutes).
	ResyncPeriod time.Duration
	// NodeMonitorGracePeriod, PodEvictionTimeout and NodeMonitorPeriod
	// tune node lifecycle; see NodeLifecycleOptions (0 = defaults: 40s,
	// 5m, 5s).
	NodeMonitorGracePeriod time.Duration
	PodEvictionTimeout     time.Duration
	NodeMonitorPeriod      time.Duration
	// TerminatedPodGCThreshold is how many terminated pods may exist
	// before the oldest are deleted (see PodGCOptions: 0 = default
	// 12500, negative = no limit).
	TerminatedPodGCThreshold int
	// Heartbeats is the node service's heartbeat table; nil → nodes'
	// Ready condition lastHeartbeatTime.
	Heartbeats Heartbeats
	// Factory, if set, is the informer factory the controllers share with
	// other components of the process (the scheduler), so that each object
	// is watched and decoded once; its caller shuts it down. Nil: RunAll
	// makes its own on Loopback with ResyncPeriod.
	Factory informers.SharedInformerFactory
	// ClusterCA is the CA certificate (PEM) the API serves with, published
	// in every namespace as the ConfigMap kube-root-ca.crt; nil publishes
	// nothing.
	ClusterCA []byte
	// APIService configures the Service default/kubernetes; without
	// Servers there is none.
	APIService APIServiceOptions
	// ExtensionAuth is published as the ConfigMap
	// kube-system/extension-apiserver-authentication; nil publishes
	// nothing.
	ExtensionAuth *ExtensionAuthentication
	// ServiceCIDR is the range Service cluster IPs come from, published
	// as the ServiceCIDR "kubernetes"; "" publishes none.
	ServiceCIDR string
	// ClientSigner, if set, signs the approved CertificateSigningRequests
	// of kubernetes.io/kube-apiserver-client (CSRSigningController).
	ClientSigner ClientCertSigner
	// Disabled names controllers (of Names) not to run, for instance to
	// run another implementation of them beside the server.
	Disabled []string
}

// RunAll runs the replication manager, the ReplicaSet manager, the
// Deployment, DaemonSet and StatefulSet controllers, the job and cronjob controllers, the endpoints
// and EndpointSlice controllers, the garbage collector, node lifecycle,
// the disruption controller, ClusterRole aggregation, the event TTL, pod
// garbage collection, the volume controller (claim protection and
// binding), the service account controller, the root CA publisher, the
// extension authentication publisher, the kubernetes Service, the default
// ServiceCIDR, the signer of client certificates (with a ClientSigner) and their
// event recorder until ctx ends, and returns after all have stopped. It
// returns the first error that stopped a controller early.
func RunAll(ctx context.Context, cfg Config) error {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 10 * time.Minute
	}
	client, err := kubernetes.NewForConfig(cfg.Loopback)
	if err != nil {
		return fmt.Errorf("controllers: client: %w", err)
	}
	factory := cfg.Factory
	if factory == nil {
		factory = informers.NewSharedInformerFactory(client, cfg.ResyncPeriod)
		defer factory.Shutdown()
	}
	rec := record.New(client, ComponentControllerManager, lg, record.Options{})
	runs, err := build(client, factory, rec, lg, cfg)
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	nsRuns, named, err := buildNamespaceControllers(client, factory, lg, cfg)
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	runs = append(runs, nsRuns...)
	g, ctx := errgroup.WithContext(ctx)
	factory.Start(ctx.Done())
	for _, f := range named {
		f.Start(ctx.Done())
		defer f.Shutdown()
	}
	g.Go(func() error { return rec.Run(ctx) })
	for _, r := range runs {
		g.Go(func() error { return r(ctx, cfg.Workers) })
	}
	return g.Wait()
}

// Controller names, as --disable-controller takes them: where
// kube-controller-manager has the same controller, its short name
// (its --controllers flag takes the same).
const (
	ReplicationControllerName  = "replicationcontroller"
	ReplicaSetControllerName   = "replicaset"
	DeploymentControllerName   = "deployment"
	DaemonSetControllerName    = "daemonset"
	StatefulSetControllerName  = "statefulset"
	EndpointsControllerName    = "endpoints"
	EndpointSliceName          = "endpointslice"
	GarbageCollectorName       = "garbagecollector"
	NodeLifecycleName          = "nodelifecycle"
	DisruptionControllerName   = "disruption"
	JobControllerName          = "job"
	CronJobControllerName      = "cronjob"
	ClusterRoleAggregationName = "clusterrole-aggregation"
	EventTTLName               = "event-ttl"
	PodGCName                  = "podgc"
	VolumeControllerName       = "persistentvolume-binder"
	CSRSigningName             = "csrsigning"
	ServiceLBName              = "servicelb"
)

// controller is one controller build makes: its name and what makes it.
type controller struct {
	name string
	make func() (func(context.Context, int) error, error)
}

// Names lists the controllers that Config.Disabled may name, in the order
// they start.
func Names() []string {
	var names []string
	for _, c := range controllerList(nil, nil, nil, nil, Config{}) {
		names = append(names, c.name)
	}
	return names
}

// CheckDisabled returns an error naming the first of names that is not a
// controller's.
func CheckDisabled(names []string) error {
	known := Names()
	for _, n := range names {
		if !slices.Contains(known, n) {
			return fmt.Errorf("unknown controller %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return nil
}

// build makes every controller on factory but those cfg.Disabled names,
// and returns their Run funcs. A disabled controller is not made at all,
// so the informers only it would use are not started.
func build(client kubernetes.Interface, factory informers.SharedInformerFactory, rec EventRecorder, lg *slog.Logger, cfg Config) ([]func(context.Context, int) error, error) {
	if err := CheckDisabled(cfg.Disabled); err != nil {
		return nil, err
	}
	var runs []func(context.Context, int) error
	for _, c := range controllerList(client, factory, rec, lg, cfg) {
		if slices.Contains(cfg.Disabled, c.name) {
			lg.Info("controller disabled", "controller", c.name)
			continue
		}
		run, err := c.make()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// controllerList is every controller build may make; nothing is made
// until a make func is called.
func controllerList(client kubernetes.Interface, factory informers.SharedInformerFactory, rec EventRecorder, lg *slog.Logger, cfg Config) []controller {
	var core coreinformers.Interface
	var apps appsinformers.Interface
	if factory != nil {
		core, apps = factory.Core().V1(), factory.Apps().V1()
	}
	return []controller{
		{ReplicationControllerName, func() (func(context.Context, int) error, error) {
			rm, err := NewReplicationManager(client, core.ReplicationControllers(), core.Pods(), lg, ReplicationOptions{Recorder: rec})
			return runOf(err, func() func(context.Context, int) error { return atLeast(workloadWorkers, rm.Run) })
		}},
		{ReplicaSetControllerName, func() (func(context.Context, int) error, error) {
			rsm, err := NewReplicaSetManager(client, apps.ReplicaSets(), core.Pods(), lg, ReplicationOptions{Recorder: rec})
			return runOf(err, func() func(context.Context, int) error { return atLeast(workloadWorkers, rsm.Run) })
		}},
		{DeploymentControllerName, func() (func(context.Context, int) error, error) {
			dpc, err := NewDeploymentController(client, apps.Deployments(), apps.ReplicaSets(), lg, DeploymentOptions{Recorder: rec})
			return runOf(err, func() func(context.Context, int) error { return atLeast(workloadWorkers, dpc.Run) })
		}},
		{DaemonSetControllerName, func() (func(context.Context, int) error, error) {
			dsc, err := NewDaemonSetController(client, apps.DaemonSets(), apps.ControllerRevisions(), core.Pods(), core.Nodes(), lg, DaemonSetOptions{Recorder: rec})
			return runOf(err, func() func(context.Context, int) error { return dsc.Run })
		}},
		{StatefulSetControllerName, func() (func(context.Context, int) error, error) {
			ssc, err := NewStatefulSetController(client, apps.StatefulSets(), core.Pods(), apps.ControllerRevisions(),
				core.PersistentVolumeClaims(), lg, StatefulSetOptions{Recorder: rec})
			return runOf(err, func() func(context.Context, int) error { return ssc.Run })
		}},
		{EndpointsControllerName, func() (func(context.Context, int) error, error) {
			ec, err := NewEndpointsController(client, core.Services(), core.Pods(), core.Endpoints(), lg, EndpointsOptions{})
			return runOf(err, func() func(context.Context, int) error { return ec.Run })
		}},
		{EndpointSliceName, func() (func(context.Context, int) error, error) {
			sc, err := NewEndpointSliceController(client, core.Services(), core.Pods(), core.Endpoints(), core.Nodes(),
				factory.Discovery().V1().EndpointSlices(), lg, EndpointSliceOptions{})
			return runOf(err, func() func(context.Context, int) error { return sc.Run })
		}},
		{GarbageCollectorName, func() (func(context.Context, int) error, error) {
			gc, err := NewGarbageCollector(client, factory, lg, GarbageCollectorOptions{Loopback: cfg.Loopback})
			return runOf(err, func() func(context.Context, int) error { return gc.Run })
		}},
		{NodeLifecycleName, func() (func(context.Context, int) error, error) {
			nl, err := NewNodeLifecycleController(client, core.Nodes(), core.Pods(), lg, NodeLifecycleOptions{
				GracePeriod:        cfg.NodeMonitorGracePeriod,
				PodEvictionTimeout: cfg.PodEvictionTimeout,
				MonitorPeriod:      cfg.NodeMonitorPeriod,
				Heartbeats:         cfg.Heartbeats,
				Recorder:           rec,
			})
			return runOf(err, func() func(context.Context, int) error { return nl.Run })
		}},
		{DisruptionControllerName, func() (func(context.Context, int) error, error) {
			dc, err := NewDisruptionController(client, factory.Policy().V1().PodDisruptionBudgets(), core.Pods(), core.ReplicationControllers(), apps, lg, DisruptionOptions{})
			return runOf(err, func() func(context.Context, int) error { return dc.Run })
		}},
		{JobControllerName, func() (func(context.Context, int) error, error) {
			jc, err := NewJobController(client, factory.Batch().V1().Jobs(), core.Pods(), lg, JobOptions{Recorder: rec})
			return runOf(err, func() func(context.Context, int) error { return jc.Run })
		}},
		{CronJobControllerName, func() (func(context.Context, int) error, error) {
			cjc, err := NewCronJobController(client, factory.Batch().V1().CronJobs(), factory.Batch().V1().Jobs(), lg, CronJobOptions{Recorder: rec})
			return runOf(err, func() func(context.Context, int) error { return cjc.Run })
		}},
		{ClusterRoleAggregationName, func() (func(context.Context, int) error, error) {
			agg, err := NewClusterRoleAggregationController(client, factory.Rbac().V1().ClusterRoles(), lg)
			return runOf(err, func() func(context.Context, int) error { return agg.Run })
		}},
		{EventTTLName, func() (func(context.Context, int) error, error) {
			return NewEventTTL(client, lg, EventTTLOptions{}).Run, nil
		}},
		{PodGCName, func() (func(context.Context, int) error, error) {
			return NewPodGCController(client, core.Pods(), core.Nodes(), lg, PodGCOptions{TerminatedPodThreshold: cfg.TerminatedPodGCThreshold}).Run, nil
		}},
		{VolumeControllerName, func() (func(context.Context, int) error, error) {
			vc, err := NewVolumeController(client, core.PersistentVolumeClaims(), core.PersistentVolumes(), core.Pods(), lg, VolumeOptions{})
			return runOf(err, func() func(context.Context, int) error { return vc.Run })
		}},
		{CSRSigningName, func() (func(context.Context, int) error, error) {
			if cfg.ClientSigner == nil {
				return func(context.Context, int) error { return nil }, nil
			}
			csc, err := NewCSRSigningController(client, factory.Certificates().V1().CertificateSigningRequests(), cfg.ClientSigner, lg)
			return runOf(err, func() func(context.Context, int) error { return csc.Run })
		}},
		{ServiceLBName, func() (func(context.Context, int) error, error) {
			return serviceLBRun(client, factory, lg), nil
		}},
	}
}

// runOf returns run() unless err is set.
func runOf(err error, run func() func(context.Context, int) error) (func(context.Context, int) error, error) {
	if err != nil {
		return nil, err
	}
	return run(), nil
}

// workloadWorkers is the least number of workers of the controllers that
// turn Deployments into pods, as kube-controller-manager's
// --concurrent-replicaset-syncs and --concurrent-deployment-syncs: a
// ReplicaSet's sync holds its worker while it creates up to
// BurstReplicas pods, so with fewer workers the other ReplicaSets of a
// rollout wait their turn while the API has room to spare.
const workloadWorkers = 5

// atLeast returns run, given at least n workers.
func atLeast(n int, run func(context.Context, int) error) func(context.Context, int) error {
	return func(ctx context.Context, workers int) error { return run(ctx, max(workers, n)) }
}
