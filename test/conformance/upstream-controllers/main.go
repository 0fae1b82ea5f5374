// Command upstream-controllers runs Kubernetes' own workload controllers,
// from k8s.io/kubernetes/pkg/controller (the replication manager and the
// ReplicaSet, Deployment, DaemonSet, StatefulSet, Job and CronJob
// controllers), against an API server, made and run as
// kube-controller-manager makes and runs them, with its default numbers of
// workers.
//
// Beside `minik server --disable-controller` naming the same controllers,
// it takes the place of minik's own, so that the two can be compared on the
// same cluster: the conformance suite (run.sh --upstream-controllers) and
// the hollow-node benchmarks (HOLLOW_UPSTREAM_CONTROLLERS).
//
//	upstream-controllers --kubeconfig FILE [--controllers deployment,replicaset] [--kube-api-qps 20 --kube-api-burst 30]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	schedulinginformers "k8s.io/client-go/informers/scheduling/v1beta1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/cronjob"
	"k8s.io/kubernetes/pkg/controller/daemon"
	"k8s.io/kubernetes/pkg/controller/deployment"
	"k8s.io/kubernetes/pkg/controller/job"
	"k8s.io/kubernetes/pkg/controller/replicaset"
	"k8s.io/kubernetes/pkg/controller/replication"
	"k8s.io/kubernetes/pkg/controller/statefulset"
	"k8s.io/kubernetes/pkg/features"
)

// controllers are the ones this command can run, by the names minik's
// --disable-controller and kube-controller-manager's --controllers use,
// with kube-controller-manager's default number of workers.
var controllers = []struct {
	name    string
	workers int
	start   func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error)
}{
	{"replicationcontroller", 5, func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error) {
		rm := replication.NewReplicationManager(ctx, f.Core().V1().Pods(), f.Core().V1().ReplicationControllers(), c, replication.BurstReplicas)
		return rm.Run, nil
	}},
	{"replicaset", 5, func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error) {
		rsc := replicaset.NewReplicaSetController(ctx, f.Apps().V1().ReplicaSets(), f.Core().V1().Pods(), c, replicaset.BurstReplicas)
		return rsc.Run, nil
	}},
	{"deployment", 5, func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error) {
		dc, err := deployment.NewDeploymentController(ctx, f.Apps().V1().Deployments(), f.Apps().V1().ReplicaSets(), f.Core().V1().Pods(), c)
		if err != nil {
			return nil, err
		}
		return dc.Run, nil
	}},
	{"daemonset", 2, func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error) {
		dsc, err := daemon.NewDaemonSetsController(ctx, f.Apps().V1().DaemonSets(), f.Apps().V1().ControllerRevisions(),
			f.Core().V1().Pods(), f.Core().V1().Nodes(), c, flowcontrol.NewBackOff(time.Second, 15*time.Minute))
		if err != nil {
			return nil, err
		}
		return dsc.Run, nil
	}},
	{"statefulset", 5, func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error) {
		ssc := statefulset.NewStatefulSetController(ctx, f.Core().V1().Pods(), f.Apps().V1().StatefulSets(),
			f.Core().V1().PersistentVolumeClaims(), f.Apps().V1().ControllerRevisions(), c)
		return ssc.Run, nil
	}},
	{"job", 5, func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error) {
		var workloads schedulinginformers.WorkloadInformer
		var groups schedulinginformers.PodGroupInformer
		if utilfeature.DefaultFeatureGate.Enabled(features.WorkloadWithJob) {
			workloads, groups = f.Scheduling().V1beta1().Workloads(), f.Scheduling().V1beta1().PodGroups()
		}
		jc, err := job.NewController(ctx, c, f.Core().V1().Pods(), f.Batch().V1().Jobs(), workloads, groups)
		if err != nil {
			return nil, err
		}
		return jc.Run, nil
	}},
	{"cronjob", 5, func(ctx context.Context, f informers.SharedInformerFactory, c kubernetes.Interface) (func(context.Context, int), error) {
		cjc, err := cronjob.NewControllerV2(ctx, f.Batch().V1().Jobs(), f.Batch().V1().CronJobs(), c)
		if err != nil {
			return nil, err
		}
		return cjc.Run, nil
	}},
}

func names() []string {
	var out []string
	for _, c := range controllers {
		out = append(out, c.name)
	}
	return out
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	which := flag.String("controllers", strings.Join(names(), ","), "controllers to run, comma-separated")
	qps := flag.Float64("kube-api-qps", 20, "client requests a second per controller, as kube-controller-manager's flag (negative: no limit)")
	burst := flag.Int("kube-api-burst", 30, "client burst per controller, as kube-controller-manager's flag")
	klog.InitFlags(nil)
	flag.Parse()
	if err := run(*kubeconfig, strings.Split(*which, ","), float32(*qps), *burst); err != nil {
		fmt.Fprintln(os.Stderr, "upstream-controllers:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, which []string, qps float32, burst int) error {
	for _, w := range which {
		if !slices.Contains(names(), w) {
			return fmt.Errorf("unknown controller %q (known: %s)", w, strings.Join(names(), ", "))
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = qps, burst
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// One client for the informers, one per controller named after it, as
	// kube-controller-manager's ControllerContext.NewClient does.
	shared, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(cfg), "shared-informers"))
	if err != nil {
		return err
	}
	// kube-controller-manager resyncs every 12 to 24 hours.
	factory := informers.NewSharedInformerFactory(shared, 12*time.Hour)
	var runs []func()
	for _, c := range controllers {
		if !slices.Contains(which, c.name) {
			continue
		}
		client, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(cfg), c.name+"-controller"))
		if err != nil {
			return err
		}
		run, err := c.start(ctx, factory, client)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		runs = append(runs, func() { run(ctx, c.workers) })
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(r)
	}
	klog.InfoS("running", "controllers", which)
	<-ctx.Done()
	factory.Shutdown()
	wg.Wait()
	return nil
}
