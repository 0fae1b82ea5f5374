package network

import (
	"encoding/json"
	"net/netip"
)

// cniVersion is the CNI spec version of the rendered configuration. Debian 12
// ships plugins 1.1.1, which speak up to 1.0.0.
const cniVersion = "1.0.0"

// netConfList is a CNI network configuration list.
type netConfList struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

// bridgeConf configures the bridge plugin. IP masquerading is left to the
// node's own chain (see masq.go): the plugin's ipMasq would also rewrite
// traffic to other nodes' pods.
type bridgeConf struct {
	Type        string      `json:"type"`
	Bridge      string      `json:"bridge"`
	IsGateway   bool        `json:"isGateway"`
	IPMasq      bool        `json:"ipMasq"`
	HairpinMode bool        `json:"hairpinMode"`
	MTU         int         `json:"mtu,omitempty"`
	IPAM        hostLocalIP `json:"ipam"`
}

// hostLocalIP configures the host-local IPAM plugin.
type hostLocalIP struct {
	Type    string      `json:"type"`
	Ranges  [][]ipRange `json:"ranges"`
	Routes  []ipamRoute `json:"routes"`
	DataDir string      `json:"dataDir"`
}

type ipRange struct {
	Subnet string `json:"subnet"`
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

// portmapConf configures the portmap plugin, which receives the port
// mappings as runtime config.
type portmapConf struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         bool            `json:"snat"`
}

// loopbackConf brings up lo inside the pod; in a chain it passes the
// previous result through.
type loopbackConf struct {
	Type string `json:"type"`
}

// renderConfList returns the CNI configuration list for a node.
func renderConfList(name, bridge string, podCIDR netip.Prefix, mtu int, ipamDir string) ([]byte, error) {
	list := netConfList{
		CNIVersion: cniVersion,
		Name:       name,
		Plugins: []any{
			bridgeConf{
				Type:        "bridge",
				Bridge:      bridge,
				IsGateway:   true,
				HairpinMode: true,
				MTU:         mtu,
				IPAM: hostLocalIP{
					Type:    "host-local",
					Ranges:  [][]ipRange{{{Subnet: podCIDR.String()}}},
					Routes:  []ipamRoute{{Dst: "0.0.0.0/0"}},
					DataDir: ipamDir,
				},
			},
			portmapConf{
				Type:         "portmap",
				Capabilities: map[string]bool{"portMappings": true},
				SNAT:         true,
			},
			loopbackConf{Type: "loopback"},
		},
	}
	return json.MarshalIndent(list, "", "  ")
}
