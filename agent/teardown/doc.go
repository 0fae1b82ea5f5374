// Package teardown removes from a host what minik's servers and agents
// made on it, as `minik killall` and `minik uninstall` do.
//
// # What goes
//
//   - Processes: minik servers and agents (the running binary's own
//     file), the containerd shims of minik's containerd namespaces
//     ("minik-NODE") with everything below them (pods' processes), and
//     the containerd daemons agents started (their --config lies in a data
//     directory, not under /etc).
//   - Mounts under the data directories (containers' root filesystems,
//     tmpfs volumes, the sandboxes' files), deepest first.
//   - Links named minik-* (the nodes' bridges) with the veths enslaved to
//     them, the service proxy's and masquerade chains, and the routes to
//     other nodes' pods, in the caller's network namespace.
//   - The cgroups of the nodes (/minik-NODE and the pods' below it) named
//     by the stopped processes, the caller, or else the host's name.
//
// Processes go first, so that nothing writes rules or routes again.
// Errors are collected: one thing that cannot be removed does not keep
// the others.
package teardown
