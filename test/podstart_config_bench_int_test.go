//go:build integration

package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// configPod is benchPod with a ConfigMap volume, a Secret env var and the
// service account token volume that admission adds (plain: none of them).
func configPod(name, node string, withConfig bool) *corev1.Pod {
	p := benchPod(name, node)
	if !withConfig {
		no := false
		p.Spec.AutomountServiceAccountToken = &no
		return p
	}
	p.Spec.Volumes = []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "bench-conf"}}}}}
	c := &p.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/conf"}}
	c.Env = []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "bench-secret"}, Key: "password"}}}}
	return p
}

// BenchmarkIntegrationPodStartConfig measures pod create → Running for a
// pod that mounts a ConfigMap, reads a Secret into its env and gets the
// service account token volume, beside a plain pod without any of them,
// alternating the two in the same run on the same node.
func BenchmarkIntegrationPodStartConfig(b *testing.B) {
	s, ip := startClusterServer(b)
	n := startAgent(b, s, ip, 1)
	cs := clientFor(b, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-conf"}, Data: map[string]string{"app.conf": "level=debug\n"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-secret"}, StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	// The token volume needs the namespace's default ServiceAccount.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			b.Fatalf("default ServiceAccount: %v", err)
		}
	}
	rt := watchRunning(ctx, b, cs)
	pods := cs.CoreV1().Pods("default")
	start := func(name string, withConfig bool) time.Duration {
		t0 := time.Now()
		if _, err := pods.Create(ctx, configPod(name, n.name, withConfig), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		at, ok := rt.wait(name)
		if !ok {
			b.Fatalf("%s not Running within a minute", name)
		}
		return at.Sub(t0)
	}
	start("cold", false) // the node's bridge and DNS listener
	var plain, config []time.Duration
	zero := int64(0)
	for i := 0; b.Loop(); i++ {
		for j := 0; j < 5; j++ {
			plain = append(plain, start(fmt.Sprintf("plain-%d-%d", i, j), false))
			config = append(config, start(fmt.Sprintf("config-%d-%d", i, j), true))
		}
		b.StopTimer()
		if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			list, err := pods.List(ctx, metav1.ListOptions{})
			if err == nil && len(list.Items) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("pods not gone within a minute")
			}
		}
		time.Sleep(settleAfterDelete)
		b.StartTimer()
	}
	report(b, "plain", plain)
	report(b, "config", config)
}
