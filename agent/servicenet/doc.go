// Package servicenet runs a node's service networking: the iptables
// service proxy, the host-gw routes to other nodes' pods and the node's
// cluster DNS server, all from the cluster's Services, EndpointSlices (or
// the Endpoints a server of an earlier version sends in their place) and
// Nodes that the node's session carries (Objects), and the hostPorts of
// the node's pods (HostPorts). network/ renders rules and routes; this
// package translates the API's objects for it and runs it.
//
// A Sync applies only the latest view, one sync at a time, and leaves the
// node's rules alone until it has a first one. Cleanup removes what any
// agent made in a network namespace.
package servicenet
