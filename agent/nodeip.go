package agent

import (
	"net"
	"net/url"
)

// routedNodeIP returns the address this host sends from toward the server
// at serverURL, as the node's InternalIP when none is configured, or ""
// when there is none but a loopback address (a server on this host: its
// own --node-ip applies) or the route cannot be found. Nothing is sent:
// connecting a UDP socket only picks the route.
func routedNodeIP(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	conn, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return ""
	}
	defer conn.Close()
	ip := conn.LocalAddr().(*net.UDPAddr).IP
	if ip.IsLoopback() {
		return ""
	}
	return ip.String()
}
