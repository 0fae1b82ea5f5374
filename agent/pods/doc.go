// Package pods is the node's pod manager: it runs the pods bound to the
// node on a container runtime, reports their statuses and serves their logs
// and exec sessions.
//
// # Reconciling
//
// The session hands the complete set of the node's pods to
// [Manager.SetPods] after every change. [Manager.Run] keeps one worker
// goroutine per pod; a worker's sync re-reads the desired pod and the
// runtime's state and acts on the difference, after every change of the pod
// and every [Config.SyncPeriod] (the runtime has no events, so exits are
// noticed by polling). A sync
//
//   - creates the sandbox when there is none (hostname, resolv.conf,
//     emptyDir and hostPath volumes; image volumes are mounted read-only
//     from their image, pulled as their pullPolicy says, when the first
//     container using them starts); a hostNetwork pod's is in the node's
//     network and UTS namespaces, with the node's IP and /etc/hosts;
//   - runs the init containers one at a time, each to success;
//   - starts the app containers, pulling images as imagePullPolicy says, and
//     restarts exited ones as restartPolicy says, with a back-off (first
//     restart at once, then BackoffBase doubling to BackoffMax; reset after
//     ten minutes of clean running) during which the container waits in
//     CrashLoopBackOff; failed pulls wait in ErrImagePull, then
//     ImagePullBackOff;
//   - runs exec, httpGet, tcpSocket and gRPC (grpc.health.v1 Check)
//     readiness and liveness probes of running containers (a container
//     without a readiness probe is ready while it runs; one failing its
//     liveness probe is stopped and then restarted as its policy says);
//   - runs lifecycle hooks (exec, httpGet sent from the node to the pod IP
//     unless a host is named, sleep; lifecycle.go): postStart right after
//     the container starts, which is not reported running until the hook
//     returns and is killed, then restarted as its policy says, when the
//     hook fails; preStop before every stop signal (deletion, failed
//     liveness probe, changed image, failed postStart), bounded by the
//     grace period, of which at least 2 s are left for the signal;
//   - bind-mounts a file kept in the node's data dir at each container's
//     terminationMessagePath and reports its first 4096 bytes as the
//     terminated state's message; with FallbackToLogsOnError, a failed
//     container with an empty file gets the last 2048 bytes of the last 80
//     lines of its log (termination.go);
//   - fails, before creating anything, a pod asking for a sysctl outside
//     the kubelet's safe set, with reason SysctlForbidden (failure.go);
//   - stops a pod that has been active for its activeDeadlineSeconds
//     (counted from its start time; an update may shorten it) and fails
//     it with reason DeadlineExceeded (failure.go);
//   - starts each ephemeral container once the app containers exist, in
//     the pod's sandbox, and never again after it exits (ephemeral.go);
//     they are reported in ephemeralContainerStatuses and take exec,
//     attach and logs;
//   - resizes running app and sidecar containers in place when the pod's
//     resources change (pods/resize): their cgroup is updated while they
//     run, or, where a changed resource's resizePolicy is
//     RestartContainer, they are stopped and started again (resize.go).
//     Container statuses report the resources each running attempt was
//     given and its allocatedResources; a resize the node's allocatable
//     cpu or memory cannot hold waits with the condition PodResizePending
//     (Infeasible), and one the runtime refused is retried each sync with
//     PodResizeInProgress (Error);
//   - stops the sandbox of a pod that reached Succeeded or Failed;
//   - stops a pod with a deletionTimestamp with its grace period, removes it
//     and calls [Reporter.PodTerminated];
//   - computes the status as the kubelet does and reports it when it
//     changed.
//
// Pods that leave the desired set are stopped and removed without a report.
//
// # Admission
//
// As the kubelet, the manager admits each pod new to the node before
// anything of it runs, in order of creation, against the pods it admitted
// before that have not finished (admit.go). A pod that asks for a
// hostPort (protocol, port and address, the wildcard overlapping every
// address) another holds is refused: it is reported Failed with reason
// NodePorts and the message "Pod was rejected: Predicate NodePorts
// failed: …", a NodePorts warning event is recorded, and nothing of it
// runs. Its controller replaces it. A pod that already started on the
// node (after an agent restart) keeps its ports.
//
// # Events
//
// When the Reporter also implements [EventReporter], workers record what
// the kubelet records, about the container's field path
// (spec.containers{NAME}): Pulling and Pulled (or "already present on
// machine"), Created and Started, Killing (deletion, failed liveness probe,
// changed image, failed postStart hook), FailedPostStartHook,
// FailedPreStopHook, BackOff (once per crash back-off; image pull back-off),
// Failed (ErrImagePull, ErrImageNeverPull, start errors), Unhealthy (each
// failed probe), FailedCreatePodSandBox, and NodePorts about a pod
// refused by admission. The agent aggregates repeats
// and sends them to the server, which writes core/v1 Events.
//
// # Restarts of the agent
//
// Run waits for the first SetPods before it touches the runtime. Then it
// removes what the runtime holds for pods not in the set and adopts the
// others: running containers are left alone, and restart counts come from
// the runtime's attempt numbers, so they survive the agent.
//
// # Logs and exec
//
// [Manager.Logs] reads the runtime's CRI-format log files and writes plain
// lines; [Manager.Exec] uses the runtime's [runtime.Execer].
//
// # Environment and volumes
//
// [Manager.SetObjects] gives the manager the ConfigMaps and Secrets the
// node's pods reference and the cluster's Services and
// ClusterTrustBundles. A container's
// environment is built when it starts, as the kubelet builds it: envFrom
// (invalid names skipped with an InvalidEnvironmentVariableNames event),
// env with $(VAR) expansion and valueFrom, then the service variables;
// command, args and subPathExpr are expanded against the result. A
// missing ConfigMap, Secret or key that is not optional keeps the container
// waiting in CreateContainerConfigError, retried at every sync. Images
// are pulled with the credentials of the pod's imagePullSecrets
// (dockerconfigjson or dockercfg); missing ones are reported with
// FailedToRetrieveImagePullSecret and the pull goes on without them.
//
// configMap, secret, downwardAPI and projected volumes are written under
// DataDir/pod-volumes/<uid>/<volume> in the kubelet's atomic layout
// (atomicwriter.go) before the sandbox starts, secret and projected ones
// on a tmpfs, and rewritten when the pod or the objects change, so
// containers see updates without a restart (except through a subPath,
// which keeps the file of the moment it was mounted). A volume whose source
// is missing keeps the pod from starting, with a FailedMount event. They
// are unmounted and removed with the pod. A serviceAccountToken
// projection holds a token of the pod's service account bound to the pod,
// which the node gets from the server (Config.Tokens, the PodToken call)
// and renews once 80% of its lifetime has passed or after a day, less a
// jitter of up to 10 s (tokens.go); a failed renewal keeps the held token
// while it is valid. A clusterTrustBundle projection holds the
// certificates of the bundle it names, or of the bundles of a signer its
// label selector matches (nil matches none), each once and in a stable
// order (trustbundles.go); an optional one that selects nothing is an
// empty file. A podCertificate projection holds a private key the node
// made, of the projection's keyType, and the certificate chain its signer
// issued for it (podcerts.go): at credentialBundlePath the PEM PKCS#8
// key followed by the chain, or at keyPath and certificateChainPath
// apart. The node asks for it with a PodCertificateRequest through the
// server (Config.Certificates, the CreatePodCertificate and
// WaitPodCertificate calls); until it is issued the volume is not set up
// and the pod does not start (FailedMount says why). A denied or failed
// request is a Denied or Failed event on the pod, and a new request for a
// new key follows after a back-off of 10 s doubling to 5 min. From the
// signer's beginRefreshAt on (plus a jitter of up to 5 min) the node asks
// again for a new key and rewrites the files; the held certificate serves
// until then, with a CertificateOverdueForRefresh event 10 min after its
// refresh time and a CertificateExpired event once it has expired. Certificates are held in memory: an agent that restarts
// asks again.
//
// # Security context
//
// A container runs with the user, group and runAsNonRoot it sets, else
// the pod's; the pod's fsGroup and supplementalGroups are groups of every
// container; privileged, capabilities, readOnlyRootFilesystem and
// allowPrivilegeEscalation (false sets no_new_privs) are the container's
// (security.go, runtime.SecurityContext). runAsNonRoot with runAsUser 0,
// or with an image whose user is root or named, keeps the container
// waiting in CreateContainerConfigError. emptyDir and API data volumes
// belong to the fsGroup (setgid directories, group-readable files).
// Safe sysctls are set in the sandbox; others fail the pod (SysctlForbidden).
//
// # Not supported
//
// Startup probes (they count as passing), hostPorts (the runtime's
// network hook has no port mappings), the defaultUser and user ownership
// of projected volume files, procMount Unmasked, seccomp, AppArmor and
// SELinux options (ignored), fsGroupChangePolicy (ownership is always set).
package pods
