package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestRunAll(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunAll(ctx, Config{
			Loopback: e.cfg, Logger: e.lg, ClusterCA: []byte(testCA),
			APIService: APIServiceOptions{ClusterIP: "10.43.0.1", Port: 6443, Servers: newTestServers("10.0.0.5:6443")},
		})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunAll = %v, want nil after its context ended", err)
			}
		case <-time.After(waitTimeout):
			t.Error("RunAll did not return after its context ended")
		}
	}()

	sel := map[string]string{"app": "web"}
	e.createRC("web", 2, sel, sel)
	e.createService("web", sel, corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	e.waitRCStatus("web", corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2})
	for i, name := range e.activePodNames() {
		e.setPodStatus(name, corev1.PodRunning, fmt.Sprintf("10.42.0.%d", 10+i), false, 0)
	}
	e.eventually("endpoints", func() error {
		ep, err := e.client.CoreV1().Endpoints("default").Get(e.ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].NotReadyAddresses) == 0 {
			return fmt.Errorf("subsets = %+v", ep.Subsets)
		}
		return nil
	})

	// A new namespace gets its default ServiceAccount and root CA, and
	// default the kubernetes Service.
	e.createNamespace("team-a")
	e.waitServiceAccount("team-a", "")
	e.waitRootCA("team-a", "")
	e.waitAPIEndpoints([]corev1.EndpointSubset{apiSubset(6443, "10.0.0.5")})

	// Deleting the RC lets the garbage collector delete its pods.
	e.deleteRC("web")
	e.eventually("pods collected", func() error {
		if got := e.activePodNames(); len(got) != 0 {
			return fmt.Errorf("pods = %v, want none", got)
		}
		return nil
	})
}

// TestRunAllDisabled runs every controller but the Deployment controller:
// an RC made after a Deployment gets its pods, the Deployment gets no
// ReplicaSet; and an unknown name is refused, naming it.
func TestRunAllDisabled(t *testing.T) {
	e := newEnv(t)
	if err := RunAll(e.ctx, Config{Loopback: e.cfg, Logger: e.lg, Disabled: []string{"deployment", "no-such"}}); err == nil || !strings.Contains(err.Error(), `"no-such"`) {
		t.Fatalf("RunAll with an unknown controller = %v, want an error naming it", err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunAll(ctx, Config{Loopback: e.cfg, Logger: e.lg, Disabled: []string{DeploymentControllerName}})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunAll = %v", err)
		}
	}()
	e.createDeployment("skipped", 2, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType})
	sel := map[string]string{"app": "rc"}
	e.createRC("rc", 2, sel, sel)
	e.waitRCStatus("rc", corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2})
	// The ReplicaSet manager ran too; give a Deployment controller, were
	// it running, as long again as the RC took.
	time.Sleep(200 * time.Millisecond)
	if rs := e.replicaSets(); len(rs) != 0 {
		t.Errorf("ReplicaSets = %d, want none with the Deployment controller disabled", len(rs))
	}
	d, err := e.client.AppsV1().Deployments("default").Get(e.ctx, "skipped", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.ObservedGeneration != 0 {
		t.Errorf("Deployment observedGeneration = %d, want 0 (never synced)", d.Status.ObservedGeneration)
	}
}
