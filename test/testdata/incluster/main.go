// Command incluster is the in-cluster client of the end-to-end tests: run
// in a pod, it lists the pods of its own namespace with client-go's
// in-cluster configuration (the service account token, CA and namespace
// mounted at /var/run/secrets/kubernetes.io/serviceaccount, and the
// KUBERNETES_SERVICE_HOST/PORT variables) and prints what it found and
// what the API answered for a namespace it may not read.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const nsFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func main() {
	if err := run(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	cfg.Timeout = 20 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ns, err := os.ReadFile(nsFile)
	if err != nil {
		return err
	}
	ctx := context.Background()
	pods, err := cs.CoreV1().Pods(string(ns)).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing pods in %s: %w", ns, err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	fmt.Printf("pods in %s: %s\n", ns, strings.Join(names, ","))
	_, err = cs.CoreV1().Secrets(string(ns)).List(ctx, metav1.ListOptions{})
	fmt.Printf("secrets forbidden: %v\n", apierrors.IsForbidden(err))
	return nil
}
