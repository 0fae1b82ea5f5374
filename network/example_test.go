package network_test

import (
	"context"
	"log"
	"net/netip"

	"github.com/minik-dev/minik/network"
)

// An agent's network wiring: pods on the bridge, routes to the other
// nodes' pods, and the service proxy.
func Example() {
	ctx := context.Background()
	cni, err := network.NewCNI(network.Config{
		PodCIDR: netip.MustParsePrefix("10.42.1.0/24"),
		DataDir: "/var/lib/minik/agent/cni",
	})
	if err != nil {
		log.Fatal(err)
	}
	ip, err := cni.Setup(ctx, "pod-uid", "/run/netns/cni-pod-uid", []network.PortMapping{{HostPort: 8080, ContainerPort: 80}})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("pod IP %v", ip)

	router, err := network.NewRouter(network.RouterConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer router.Close()
	err = router.SyncRoutes(ctx, []network.Route{
		{PodCIDR: netip.MustParsePrefix("10.42.2.0/24"), NodeIP: netip.MustParseAddr("192.168.1.12")},
	})
	if err != nil {
		log.Fatal(err)
	}

	ipt, err := network.NewIPTables(network.IPTablesConfig{})
	if err != nil {
		log.Fatal(err)
	}
	proxier, err := network.NewProxier(network.ProxierConfig{
		Executor:           ipt,
		ClusterCIDR:        netip.MustParsePrefix("10.42.0.0/16"),
		LocalhostNodePorts: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	services := []network.Service{{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.43.0.10"),
		Ports: []network.ServicePort{{Name: "http", Port: 80, NodePort: 30080}}}}
	endpoints := []network.Endpoints{{Namespace: "default", Name: "web",
		Ports: map[string][]netip.AddrPort{"http": {netip.AddrPortFrom(ip, 80)}}}}
	if err := proxier.Sync(ctx, services, endpoints); err != nil {
		log.Fatal(err)
	}
}
