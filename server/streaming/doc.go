// Package streaming serves the pods/log, pods/exec, pods/attach,
// pods/proxy and pods/portforward subresources by forwarding them to the
// node that runs the pod, through streams the node's agent opened
// (api.Tunnel): the server never dials an agent, nor a pod.
//
// # Tunnel
//
// Server implements the gRPC Tunnel service. Each agent holds one Connect
// stream; to serve a request the server sends a TunnelRequest on it and
// waits (OpenTimeout) for the agent to open a Stream call naming the
// request id. That call carries the session's bytes and lasts until the
// API handler is done with it. Node identity comes from the caller's
// authenticated identity (PeerNodeName by default), so a node can neither
// connect as another nor take another node's sessions.
//
// # Client protocols
//
// Logs are streamed as chunked text/plain, flushed per write, or over a
// WebSocket (binary.k8s.io, base64.binary.k8s.io: an empty message, then
// the log in messages, then the close; logsws.go). Exec and
// attach speak the remote command protocols of kubectl and client-go:
// v5.channel.k8s.io (and v4, and the unversioned ones) over WebSocket, and
// v4.channel.k8s.io to v2 over SPDY/3.1. The exit code reaches the client
// as a Status with reason NonZeroExitCode and an ExitCode cause.
//
// # Connections to pods
//
// Proxy and port forwarding open DIAL sessions: the agent connects to a
// TCP port of the pod and relays its bytes as stdout frames, and the
// session's stdin frames as the bytes sent (stdin_eof half-closes). On the
// server a session is a net.Conn (tunnelConn). pods/proxy runs an HTTP
// reverse proxy over one session per request, to the pod's IP as seen from
// its node: every method, bodies streamed both ways, upgrades (101) passed
// through, the client's Authorization and Impersonate-* headers removed
// and X-Forwarded-For/-Host/-Proto set; HTTPS pods are not verified, as in
// Kubernetes. Links in proxied HTML are not rewritten. pods/portforward
// speaks SPDY/3.1 (portforward.k8s.io), plain or tunneled in a WebSocket
// (SPDY/3.1+portforward.k8s.io, what kubectl tries first); each
// data/error stream pair is one session to 127.0.0.1:PORT inside the
// pod's network namespace. The older v4.channel.k8s.io port forwarding
// is refused with 400, which makes a client fall back to SPDY.
//
// # Flow control
//
// No hop buffers more than a frame or two: writes to the client block the
// gRPC receive, HTTP/2 flow control then blocks the agent's send, and the
// agent's writer blocks the container's log or process. A client that
// stops reading stalls only its own session.
package streaming
