// Package defaults holds the cluster defaults that the server, the agent,
// the network code and the command line share: the address ranges, the
// DNS names and the data directories. Packages name their own defaults
// after these, so a default changes in one place.
package defaults

const (
	// ClusterCIDR is the pod network; each node gets a /24 of it.
	ClusterCIDR = "10.42.0.0/16"
	// ServiceCIDR is the range of Service cluster IPs. Its first
	// address is the cluster IP of the "kubernetes" Service, its tenth
	// that of cluster DNS.
	ServiceCIDR = "10.43.0.0/16"
	// ClusterDNS is the cluster DNS address pods are given: the tenth
	// address of ServiceCIDR.
	ClusterDNS = "10.43.0.10"
	// ClusterDomain is the DNS domain of services and pods.
	ClusterDomain = "cluster.local"
	// ServerDataDir is where a server keeps its state, certificates and
	// the admin kubeconfig.
	ServerDataDir = "/var/lib/minik"
	// AgentDataDir is where an agent keeps its state (a server's
	// embedded agent uses ServerDataDir/agent).
	AgentDataDir = ServerDataDir + "/agent"
	// Kubeconfig is the admin kubeconfig of a server with the default
	// data directory.
	Kubeconfig = ServerDataDir + "/admin.kubeconfig"
	// NodePortRange is the range of NodePorts.
	NodePortRange = "30000-32767"
)
