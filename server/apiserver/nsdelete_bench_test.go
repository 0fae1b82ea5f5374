package apiserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BenchmarkNamespaceDeletion fills a namespace with 30 pods, 30 services
// and 30 endpoints, deletes it and waits until the namespace is gone; it
// reports the time from the DELETE to the namespace's disappearance.
func BenchmarkNamespaceDeletion(b *testing.B) {
	const perKind = 30
	ts, _ := benchServer(b)
	ctx := context.Background()
	cfg := &rest.Config{Host: ts.URL, QPS: -1, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("bench-%d", i)
		fillBenchNamespace(b, cs, ns, perKind)
		t0 := time.Now()
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		for {
			_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Since(t0) > time.Minute {
				b.Fatalf("namespace %s still there after a minute (err %v)", ns, err)
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/namespace")
}

func fillBenchNamespace(b *testing.B, cs kubernetes.Interface, ns string, n int) {
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for j := 0; j < n; j++ {
		name := fmt.Sprintf("o%d", j)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name + "-ep"}}
		if _, err := cs.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
