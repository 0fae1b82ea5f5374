// Package runtime runs Kubernetes-style pods on containerd.
//
// A pod is a sandbox plus application containers. The sandbox is a small
// "pause" container that owns the pod's network, IPC and UTS namespaces;
// application containers join those namespaces through /proc/<pid>/ns/*.
// The sandbox of a pod on the node's network ([PodSpec.HostNetwork]) keeps
// the node's network and UTS namespaces instead: no pod network is set up
// or torn down ([LabelHostNetwork]), and its hosts and hostname files are
// the node's.
// The pause process is the agent's own executable (resolved from
// /proc/self/exe) bind-mounted read-only into an empty root file system that
// the runtime creates under its data directory, so a node needs no image from
// outside to run a pod. The binary's main must therefore dispatch
//
//	minik pause
//
// to [PauseMain] (see [PauseArg]).
//
// # Layout under the data directory
//
//	DIR/
//	  containerd.sock           when supervised by [StartContainerd]
//	  containerd/{root,state}   containerd's own state
//	  fifo/                     task stdio FIFOs
//	  pause/rootfs/             empty read-only root of every sandbox
//	  sandboxes/<uid>/          hosts, hostname, resolv.conf
//	  sandboxes/<uid>/volumes/<name>/   emptyDir volumes
//	  sandboxes/<uid>/{volumes,imagevolumes}.json   where each volume is
//	  pods/<ns>_<name>_<uid>/<container>/<attempt>.log   CRI-format logs
//
// # Containerd objects
//
// Everything the runtime creates lives in one containerd namespace (one per
// agent) and carries labels: [LabelKind] ("sandbox" or "container"),
// [LabelPodUID], [LabelPodName], [LabelPodNamespace], [LabelContainer] and
// [LabelAttempt]. State is read back from these labels, so a new [Containerd]
// on the same containerd adopts running pods without restarting them, and
// [Containerd.GC] removes what belongs to no pod. A container attempt is a
// containerd container; a restart creates attempt N+1 and keeps attempt N
// (for its exit status and log) until attempt N+2 replaces it.
//
// All of a pod's containers carry the io.containerd.runc.v2.group annotation,
// so one shim serves the whole pod.
//
// An image volume ([Volume.Image]) is a read-only snapshot view of the
// image's file system, minik-imagevolume-<uid>-<volume>, made when the first
// container mounting it starts and mounted directly into the containers. It
// carries [LabelPodUID] and is a containerd GC root; [Containerd.RemovePod]
// and [Containerd.GC] remove it.
//
// # Pulls
//
// Images are pulled with containerd's docker resolver. [Config.Registries]
// ([Registries], read from a k3s-style registries.yaml) gives a registry
// mirror endpoints, tried in order before the registry itself, and hosts
// their TLS settings and credentials; a pod's pull secrets answer for hosts
// without credentials of their own. Registries on localhost are plain HTTP.
//
// # Resources
//
// A container's cgroup gets CPU shares from its CPU request (the limit
// without one; at least 2), a CFS quota from its CPU limit (period 100 ms,
// at least 1 ms) and its memory limit, as the kubelet sets them. The same
// mapping serves a new container's spec and [Resizer.ResizeContainer],
// which updates the running task and records the new values in the
// container's spec. Containers see their own cgroup read-only at
// /sys/fs/cgroup.
//
// # Interfaces
//
// [Runtime] is the seam an agent's pod workers use (pods via [Pods],
// containers via [Containers]); [Execer], [Images] and [Resizer] are
// optional abilities. [Containerd] implements all of them; runtimetest.Fake is an
// in-memory implementation, and runtimetest.Suite checks both.
package runtime
