//go:build integration

package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statefulClaims is a StatefulSet of 2 with one claim template whose
// claims go with scaled-down pods and stay when the set is deleted, and
// two hand-made volumes for the claims to bind to.
const statefulClaims = `apiVersion: v1
kind: PersistentVolume
metadata: {name: claims-pv-a}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/minik-claims-pv-a, type: DirectoryOrCreate}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: claims-pv-b}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/minik-claims-pv-b, type: DirectoryOrCreate}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: sts-db}}
  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Retain}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      storageClassName: ""
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
  template:
    metadata:
      labels: {app: sts-db}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleep
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
        volumeMounts: [{name: data, mountPath: /data}]
        resources: {requests: {cpu: 10m, memory: 8Mi}}
`

// TestIntegrationStatefulSetClaims runs a StatefulSet with a claim
// template on a real node: each pod's claim is made and bound to a
// volume before the pod runs; scaling down deletes the claim of the
// removed pod (whenScaled: Delete) and releases its volume; deleting the
// set keeps the remaining claim (whenDeleted: Retain).
func TestIntegrationStatefulSetClaims(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	ctx := context.Background()
	claims, pvs := cs.CoreV1().PersistentVolumeClaims("default"), cs.CoreV1().PersistentVolumes()

	s.mustMinik(statefulClaims, "apply", "-f", "-")
	t.Cleanup(func() {
		s.minik("", "delete", "statefulset", "db")
		s.minik("", "delete", "pvc", "data-db-0", "data-db-1")
		s.minik("", "delete", "pv", "claims-pv-a", "claims-pv-b")
	})
	eventually(t, 180*time.Second, "2 running pods with bound claims", func() error {
		for i := range 2 {
			pod, err := cs.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("db-%d", i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if pod.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("%s is %s", pod.Name, pod.Status.Phase)
			}
			claim, err := claims.Get(ctx, fmt.Sprintf("data-db-%d", i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" {
				return fmt.Errorf("claim %s is %s (volume %q)", claim.Name, claim.Status.Phase, claim.Spec.VolumeName)
			}
		}
		return nil
	})
	gone, err := claims.Get(ctx, "data-db-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := s.mustMinik("", "kubectl", "get", "pvc")
	t.Logf("kubectl get pvc:\n%s", out)

	s.mustMinik("", "scale", "statefulset", "db", "--replicas", "1")
	eventually(t, 60*time.Second, "claim of db-1 deleted, its volume released", func() error {
		if _, err := claims.Get(ctx, "data-db-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("claim data-db-1: %v", err)
		}
		pv, err := pvs.Get(ctx, gone.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pv.Status.Phase != corev1.VolumeReleased {
			return fmt.Errorf("volume %s is %s", pv.Name, pv.Status.Phase)
		}
		return nil
	})

	s.mustMinik("", "delete", "statefulset", "db")
	eventually(t, 60*time.Second, "db-0 gone", func() error {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "db-0", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("db-0: %v", err)
	})
	claim, err := claims.Get(ctx, "data-db-0", metav1.GetOptions{})
	if err != nil || claim.DeletionTimestamp != nil || claim.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim data-db-0 after the set was deleted: %v %+v; want it kept, Bound", err, claim)
	}
}

// TestIntegrationHostPortConflict puts a pod with a hostPort on a node,
// then a StatefulSet whose pod asks for the same port on the same node:
// the node refuses that pod (Failed, NodePorts), the controller replaces
// it, and once the first pod is gone the set's pod runs.
func TestIntegrationHostPortConflict(t *testing.T) {
	s, ip := startClusterServer(t)
	n1 := startAgent(t, s, ip, 1, "--heartbeat-interval", "1s")
	cs := clientFor(t, s)
	waitNodeReady(t, cs, n1.name)
	ctx := context.Background()
	pods := cs.CoreV1().Pods("default")
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: holder}
spec:
  nodeName: %[1]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sleep, image: busybox, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"], ports: [{containerPort: 21017, hostPort: 21017}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ports}
spec:
  replicas: 1
  serviceName: ports
  selector: {matchLabels: {app: sts-ports}}
  template:
    metadata:
      labels: {app: sts-ports}
    spec:
      nodeName: %[1]s
      terminationGracePeriodSeconds: 1
      containers:
      - {name: sleep, image: busybox, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"], ports: [{containerPort: 21017, hostPort: 21017}]}
`, n1.name)
	s.mustMinik(strings.SplitN(manifest, "---\n", 2)[0], "apply", "-f", "-")
	t.Cleanup(func() {
		s.minik("", "delete", "statefulset", "ports")
		s.minik("", "delete", "pod", "holder", "--grace-period=0")
	})
	eventually(t, 120*time.Second, "holder running", func() error {
		p, err := pods.Get(ctx, "holder", metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("holder: %v %v", err, p.Status.Phase)
		}
		return nil
	})
	s.mustMinik(strings.SplitN(manifest, "---\n", 2)[1], "apply", "-f", "-")
	var rejected *corev1.Pod
	eventually(t, 60*time.Second, "ports-0 rejected", func() error {
		p, err := pods.Get(ctx, "ports-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("ports-0 is %s", p.Status.Phase)
		}
		rejected = p
		return nil
	})
	want := "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
	if rejected.Status.Reason != "NodePorts" || rejected.Status.Message != want {
		t.Errorf("ports-0 status reason %q message %q, want NodePorts, %q", rejected.Status.Reason, rejected.Status.Message, want)
	}
	eventually(t, 60*time.Second, "ports-0 replaced", func() error {
		p, err := pods.Get(ctx, "ports-0", metav1.GetOptions{})
		if err != nil || p.UID == rejected.UID {
			return fmt.Errorf("ports-0 not replaced yet: %v", err)
		}
		return nil
	})
	s.mustMinik("", "delete", "pod", "holder", "--grace-period=0")
	eventually(t, 120*time.Second, "ports-0 running", func() error {
		p, err := pods.Get(ctx, "ports-0", metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("ports-0: %v %v", err, p.Status.Phase)
		}
		return nil
	})
}
