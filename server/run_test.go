package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/server/coord"
	"github.com/minik-dev/minik/store/storetest"
)

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRunMakesNamespacesUsable starts the control plane and checks what
// its controllers give every namespace: the default ServiceAccount, the
// cluster CA as kube-root-ca.crt, and in default the kubernetes Service
// whose Endpoints are this server's advertised address; and the
// ServiceCIDR kubernetes, Ready with the server's service range.
func TestRunMakesNamespacesUsable(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	ctx := runServer(t, Config{
		DataDir: dir, HTTPSPort: port, BindAddress: "127.0.0.1", AdvertiseAddress: "192.0.2.10", DisableAgent: true,
		ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", Version: "test",
	})
	cs, ca := adminClient(ctx, t, filepath.Join(dir, "admin.kubeconfig"))
	core := cs.CoreV1()
	eventually(ctx, t, "default ServiceAccount", func() error {
		_, err := core.ServiceAccounts("kube-system").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	eventually(ctx, t, "kube-root-ca.crt", func() error {
		cm, err := core.ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err == nil && cm.Data["ca.crt"] != string(ca) {
			return fmt.Errorf("ca.crt is not the CA the API serves with")
		}
		return err
	})
	eventually(ctx, t, "kubernetes endpoints", func() error {
		svc, err := core.Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Spec.ClusterIP != "10.43.0.1" || svc.Spec.Ports[0].TargetPort.IntValue() != port {
			return fmt.Errorf("service at %s → %s, want 10.43.0.1 → %d", svc.Spec.ClusterIP, svc.Spec.Ports[0].TargetPort.String(), port)
		}
		ep, err := core.Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}},
		}}
		if fmt.Sprint(ep.Subsets) != fmt.Sprint(want) {
			return fmt.Errorf("endpoints %v, want %v", ep.Subsets, want)
		}
		return nil
	})
	eventually(ctx, t, "default ServiceCIDR", func() error {
		sc, err := cs.NetworkingV1().ServiceCIDRs().Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if fmt.Sprint(sc.Spec.CIDRs) != "[10.43.0.0/16]" || !meta.IsStatusConditionTrue(sc.Status.Conditions, "Ready") {
			return fmt.Errorf("cidrs %v, conditions %v; want [10.43.0.0/16], Ready", sc.Spec.CIDRs, sc.Status.Conditions)
		}
		return nil
	})
}

// runServer runs the control plane of cfg, logging warnings to t, until
// the test ends (at most a minute), and returns the context it runs in.
// The test fails if Run fails or does not return once that ends.
func runServer(t *testing.T, cfg Config) context.Context {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return ctx
}

// adminClient waits for the kubeconfig Run writes when ready and returns
// a client from it, with the CA it trusts.
func adminClient(ctx context.Context, t *testing.T, path string) (kubernetes.Interface, []byte) {
	t.Helper()
	eventually(ctx, t, "admin.kubeconfig", func() error { _, err := os.Stat(path); return err })
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, cfg.CAData
}

// eventually polls cond until it returns nil, failing t when ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, cond func() error) {
	t.Helper()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %v", what, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// On an etcd datastore Run coordinates through it: the server stores the
// cluster's sealed secrets, lists itself among the servers and, elected
// leader, runs the controllers.
func TestRunOnEtcdCoordinates(t *testing.T) {
	endpoint := storetest.StartEtcd(t)
	dir, port := t.TempDir(), freePort(t)
	ctx := runServer(t, Config{
		DataDir: dir, HTTPSPort: port, BindAddress: "127.0.0.1", DisableAgent: true,
		ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", Version: "test",
		DatastoreEndpoint: endpoint, NodeMonitorGracePeriod: time.Second,
	})
	cs, _ := adminClient(ctx, t, filepath.Join(dir, "admin.kubeconfig"))
	eventually(ctx, t, "default ServiceAccount, made by the elected leader's controllers", func() error {
		_, err := cs.CoreV1().ServiceAccounts("kube-system").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	cli := storetest.EtcdClient(t, endpoint)
	self := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	eventually(ctx, t, "this server's record among the servers", func() error {
		resp, err := cli.Get(ctx, "/minik/cluster/servers/"+self)
		if err == nil && len(resp.Kvs) == 0 {
			err = fmt.Errorf("no record of %s", self)
		}
		return err
	})
	if _, _, found, err := coord.NewEtcdSecrets(cli, "/minik").Sealed(ctx); err != nil || !found {
		t.Errorf("sealed cluster secrets in etcd: found %v, %v", found, err)
	}
}

// TestRunRefusesUnknownController: a --disable-controller name that is no
// controller's stops the server before it touches its data dir, with an
// error naming the flag, the name and the known ones.
func TestRunRefusesUnknownController(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	err := Run(context.Background(), Config{DataDir: dir, DisableControllers: []string{"deployment", "deployments"}})
	if err == nil || !strings.Contains(err.Error(), "disable-controller") || !strings.Contains(err.Error(), `"deployments"`) || !strings.Contains(err.Error(), "replicaset") {
		t.Fatalf("Run = %v, want an error naming disable-controller, \"deployments\" and the known names", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir: %v, want it never made", err)
	}
}

// TestRunRefusesBadRegistriesFile checks that the embedded agent's bad
// registries file stops the server before it touches its data dir, as it
// would stop an agent.
func TestRunRefusesBadRegistriesFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(conf, []byte("mirrors:\n  registry.k8s.io:\n    endpoint: [\"ftp://x\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	err := Run(context.Background(), Config{DataDir: dir, RegistriesConfig: conf})
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Run = %v, want runtime.ErrInvalid", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir: %v, want it never made", err)
	}
}
