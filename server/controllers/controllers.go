package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/informers"
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
	runs = append(runs, serviceLBRun(client, factory, lg))
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

// build makes every controller on factory, and returns their Run funcs.
func build(client kubernetes.Interface, factory informers.SharedInformerFactory, rec EventRecorder, lg *slog.Logger, cfg Config) ([]func(context.Context, int) error, error) {
	core := factory.Core().V1()
	rm, err := NewReplicationManager(client, core.ReplicationControllers(), core.Pods(), lg, ReplicationOptions{Recorder: rec})
	if err != nil {
		return nil, err
	}
	rsm, err := NewReplicaSetManager(client, factory.Apps().V1().ReplicaSets(), core.Pods(), lg, ReplicationOptions{Recorder: rec})
	if err != nil {
		return nil, err
	}
	dpc, err := NewDeploymentController(client, factory.Apps().V1().Deployments(), factory.Apps().V1().ReplicaSets(), lg, DeploymentOptions{Recorder: rec})
	if err != nil {
		return nil, err
	}
	dsc, err := NewDaemonSetController(client, factory.Apps().V1().DaemonSets(), factory.Apps().V1().ControllerRevisions(), core.Pods(), core.Nodes(), lg, DaemonSetOptions{Recorder: rec})
	if err != nil {
		return nil, err
	}
	ssc, err := NewStatefulSetController(client, factory.Apps().V1().StatefulSets(), core.Pods(), factory.Apps().V1().ControllerRevisions(),
		core.PersistentVolumeClaims(), lg, StatefulSetOptions{Recorder: rec})
	if err != nil {
		return nil, err
	}
	ec, err := NewEndpointsController(client, core.Services(), core.Pods(), core.Endpoints(), lg, EndpointsOptions{})
	if err != nil {
		return nil, err
	}
	sc, err := NewEndpointSliceController(client, core.Services(), core.Pods(), core.Endpoints(), core.Nodes(),
		factory.Discovery().V1().EndpointSlices(), lg, EndpointSliceOptions{})
	if err != nil {
		return nil, err
	}
	gc, err := NewGarbageCollector(client, factory, lg, GarbageCollectorOptions{Loopback: cfg.Loopback})
	if err != nil {
		return nil, err
	}
	nl, err := NewNodeLifecycleController(client, core.Nodes(), core.Pods(), lg, NodeLifecycleOptions{
		GracePeriod:        cfg.NodeMonitorGracePeriod,
		PodEvictionTimeout: cfg.PodEvictionTimeout,
		MonitorPeriod:      cfg.NodeMonitorPeriod,
		Heartbeats:         cfg.Heartbeats,
		Recorder:           rec,
	})
	if err != nil {
		return nil, err
	}
	dc, err := NewDisruptionController(client, factory.Policy().V1().PodDisruptionBudgets(), core.Pods(), core.ReplicationControllers(), factory.Apps().V1(), lg, DisruptionOptions{})
	if err != nil {
		return nil, err
	}
	jc, err := NewJobController(client, factory.Batch().V1().Jobs(), core.Pods(), lg, JobOptions{Recorder: rec})
	if err != nil {
		return nil, err
	}
	cjc, err := NewCronJobController(client, factory.Batch().V1().CronJobs(), factory.Batch().V1().Jobs(), lg, CronJobOptions{Recorder: rec})
	if err != nil {
		return nil, err
	}
	agg, err := NewClusterRoleAggregationController(client, factory.Rbac().V1().ClusterRoles(), lg)
	if err != nil {
		return nil, err
	}
	vc, err := NewVolumeController(client, core.PersistentVolumeClaims(), core.PersistentVolumes(), core.Pods(), lg, VolumeOptions{})
	if err != nil {
		return nil, err
	}
	ttl := NewEventTTL(client, lg, EventTTLOptions{})
	pgc := NewPodGCController(client, core.Pods(), core.Nodes(), lg, PodGCOptions{TerminatedPodThreshold: cfg.TerminatedPodGCThreshold})
	runs := []func(context.Context, int) error{atLeast(workloadWorkers, rm.Run), atLeast(workloadWorkers, rsm.Run), atLeast(workloadWorkers, dpc.Run), dsc.Run, ssc.Run, ec.Run, sc.Run, gc.Run, nl.Run, dc.Run, jc.Run, cjc.Run, agg.Run, ttl.Run, pgc.Run, vc.Run}
	if cfg.ClientSigner != nil {
		csc, err := NewCSRSigningController(client, factory.Certificates().V1().CertificateSigningRequests(), cfg.ClientSigner, lg)
		if err != nil {
			return nil, err
		}
		runs = append(runs, csc.Run)
	}
	return runs, nil
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
