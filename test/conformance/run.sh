#!/usr/bin/env bash
# Runs the upstream Kubernetes v1.37.2 conformance e2e suite (e2e.test built
# built from this folder's module) against an all-in-one minik server on a fresh data dir.
# Run it from the project's root (as root): test/conformance/run.sh [options]
#
#   ./run.sh                       # every [Conformance] spec: non-serial ones in parallel, then [Serial] ones alone
#   ./run.sh --focus 'Pods should get a host IP' --procs 1
#
# Options (defaults in brackets):
#   --focus REGEX        ginkgo focus [\[Conformance\]]
#   --skip REGEX         extra ginkgo skip regex [none]
#   --skip-serial        skip [Serial] and [Disruptive] specs (--ginkgo.skip='\[Serial\]|\[Disruptive\]')
#   --procs N            parallel ginkgo processes for the non-serial phase [8]; 1 runs one phase, in order
#   --timeout DUR        ginkgo suite timeout of the parallel (or only) phase [45m]
#   --serial-timeout DUR ginkgo suite timeout of the [Serial] phase [40m]
#   --no-verify-service-account
#                        skip the framework's wait for the "default" ServiceAccount
#                        and kube-root-ca.crt in each test namespace (certification
#                        keeps it; so does this script by default)
#   --port P             API port [16443]
#   --nodes N            1 or 2 nodes: the second is a joined agent in a network namespace
#                        of its own on the same bridge (certification needs more than one) [2]
#   --add-kubernetes-service
#                        workaround: create the "kubernetes" Service (10.43.0.1:443, no
#                        selector) and its Endpoints (node IP:port) in "default" before
#                        the run, as kube-apiserver does; the suite's setup fails
#                        without it (minik does not create it)
#   --host-netns         run in the host network namespace instead of a private one
#   --out DIR            run directory [runs/YYYYmmdd-HHMMSS]
#   --keep-data          keep the server's data dir under /tmp
#   --upstream-controllers
#                        run Kubernetes' own workload controllers (upstream-controllers/, built
#                        from this module into the run dir) in place of minik's: the server gets
#                        --disable-controller for the same seven, and the command runs beside it
#                        on the admin kubeconfig with kube-controller-manager's defaults
# The server, its containerd and pods, e2e.test and kubectl run inside a
# network namespace made for the run (a bridge with no ports, 10.250.0.1/24, with
# the default route, so nothing the specs send leaves it); it is deleted at
# the end, after "minik agent --cleanup" ran inside it. A registry in it
# (images/serve, at NODE_IP:5000) serves the image archives; both nodes
# mirror registry.k8s.io to it, so specs with imagePullPolicy: Always pull
# the images they would otherwise import (not with --host-netns).
# Environment: BIN=path to a minik binary (default: built from $MINIK_SRC, the
# git checkout of the current directory, into the run dir); CONFORMANCE_WORK=where
# builds, image archives and runs go [/var/tmp/minik-conformance];
# E2E=path to e2e.test [$CONFORMANCE_WORK/e2e.test];
# KUBECTL=kubectl the kubectl specs run [a wrapper around "$BIN kubectl"].
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MINIK_SRC=${MINIK_SRC:-$(git rev-parse --show-toplevel 2>/dev/null || pwd)}
WORK=${CONFORMANCE_WORK:-/var/tmp/minik-conformance}
E2E=${E2E:-$WORK/e2e.test}
GINKGO=${GINKGO:-$WORK/ginkgo}
FOCUS='\[Conformance\]'
SKIP=''
SKIP_SERIAL=0
PROCS=8
TIMEOUT=45m
SERIAL_TIMEOUT=40m
VERIFY_SA=true
PORT=16443
OUT=''
KEEP_DATA=0
ADD_K8S_SVC=0
HOST_NETNS=0
NODE_IP=10.250.0.1
NODES=2
NETNS2=''
AGENT2_PID=''
REGISTRY_PID=''
REGISTRY_PORT=5000
UPSTREAM_CTL=0
UPSTREAM_PID=''
UPSTREAM_NAMES=replicationcontroller,replicaset,deployment,daemonset,statefulset,job,cronjob


while (($#)); do
	case $1 in
	--focus) FOCUS=$2; shift 2 ;;
	--skip) SKIP=$2; shift 2 ;;
	--skip-serial) SKIP_SERIAL=1; shift ;;
	--procs) PROCS=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--serial-timeout) SERIAL_TIMEOUT=$2; shift 2 ;;
	--no-verify-service-account) VERIFY_SA=false; shift ;;
	--port) PORT=$2; shift 2 ;;
	--nodes) NODES=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--keep-data) KEEP_DATA=1; shift ;;
	--add-kubernetes-service) ADD_K8S_SVC=1; shift ;;
	--host-netns) HOST_NETNS=1; shift ;;
	--upstream-controllers) UPSTREAM_CTL=1; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

OUT=${OUT:-$WORK/runs/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log() { echo "run.sh: $(date +%H:%M:%S) $*" | tee -a "$OUT/run.log" >&2; }

# The module is built in a copy under $WORK, so this folder may be read-only.
mkdir -p "$WORK/src"
V=k8s.io/component-base/version
E2E_LDFLAGS="-X $V.gitMajor=1 -X $V.gitMinor=37 -X $V.gitVersion=v1.37.2 -X $V.gitTreeState=clean"
cp -r "$HERE"/go.mod "$HERE"/go.sum "$HERE"/e2e_test.go "$HERE"/images "$HERE"/upstream-controllers "$WORK/src/"
if [ ! -x "$E2E" ]; then
	log "building e2e.test (Kubernetes v1.37.2; about 15-25 minutes on 2 cores, once)"
	# Stamped with its version, as upstream's release builds are: the suite
	# reads it (the pod security level fixtures of the restricted/vX.Y
	# policy the PodCertificate specs use), and an unstamped build says v0.0.
	(cd "$WORK/src" && nice -n 19 go test -c -ldflags "$E2E_LDFLAGS" -o "$E2E" .)
fi
if ((PROCS > 1)) && [ ! -x "$GINKGO" ]; then
	log "building the ginkgo CLI (parallel runs need it)"
	(cd "$WORK/src" && nice -n 19 go build -o "$GINKGO" github.com/onsi/ginkgo/v2/ginkgo)
fi
if ! ls "$WORK"/images/*.tar >/dev/null 2>&1; then
	log "building the image archives (builds agnhost; 5-10 minutes, once)"
	(cd "$WORK/src/images" && nice -n 19 go run . -o "$WORK/images")
fi
if [ -z "${BIN:-}" ]; then
	log "building minik from $MINIK_SRC"
	(cd "$MINIK_SRC" && nice -n 19 go build -o "$OUT/minik" .)
	BIN=$OUT/minik
fi
BIN=$(readlink -f "$BIN")
if ((!HOST_NETNS)); then
	log "building the image registry (images/serve)"
	(cd "$WORK/src/images" && nice -n 19 go build -o "$OUT/serve-images" ./serve)
fi
SERVER_EXTRA=()
if ((UPSTREAM_CTL)); then
	log "building upstream-controllers ($UPSTREAM_NAMES from k8s.io/kubernetes/pkg/controller)"
	(cd "$WORK/src" && nice -n 19 go build -o "$OUT/upstream-controllers" ./upstream-controllers)
	SERVER_EXTRA=(--disable-controller "$UPSTREAM_NAMES")
fi
log "minik: $BIN ($("$BIN" --version 2>&1 | head -1)); source $(git -C "$MINIK_SRC" rev-parse --short HEAD 2>/dev/null || echo '?')"


NETNS=''
NX=()
SERVER_NET=()
SERVER_WRAP=()
DATA=$(mktemp -d /tmp/minik-conformance.XXXXXX)
KCFG=$DATA/admin.kubeconfig
mkdir -p "$DATA/agent/images"
cp "$WORK"/images/*.tar "$DATA/agent/images/"
if [ -z "${KUBECTL:-}" ]; then
	KUBECTL=$OUT/kubectl
	printf '#!/bin/sh\nexec %q kubectl "$@"\n' "$BIN" > "$KUBECTL"
	# (e2e.test runs inside the namespace already; kubectl inherits it)
	chmod +x "$KUBECTL"
fi

SERVER_PID=''
stop_agent2() {
	[ -n "$NETNS2" ] || return 0
	if [ -n "$AGENT2_PID" ]; then
		log "stopping the second node (pid $AGENT2_PID)"
		kill -TERM "$AGENT2_PID" 2>/dev/null || true
		for _ in $(seq 1 30); do kill -0 "$AGENT2_PID" 2>/dev/null || break; sleep 1; done
		kill -KILL "$AGENT2_PID" 2>/dev/null || true
		AGENT2_PID=''
	fi
	nsenter --net="/run/netns/$NETNS2" "$BIN" agent --cleanup >>"$OUT/cleanup.log" 2>&1 || true
	for p in $(ip netns pids "$NETNS2" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
	ip netns del "$NETNS2" 2>/dev/null || log "could not delete netns $NETNS2"
	NETNS2=''
}
stop_upstream() {
	[ -n "$UPSTREAM_PID" ] || return 0
	log "stopping upstream-controllers (pid $UPSTREAM_PID)"
	kill -TERM "$UPSTREAM_PID" 2>/dev/null || true
	for _ in $(seq 1 30); do kill -0 "$UPSTREAM_PID" 2>/dev/null || break; sleep 1; done
	kill -KILL "$UPSTREAM_PID" 2>/dev/null || true
	UPSTREAM_PID=''
}
stop_registry() {
	[ -n "$REGISTRY_PID" ] || return 0
	log "stopping the image registry (pid $REGISTRY_PID)"
	kill -TERM "$REGISTRY_PID" 2>/dev/null || true
	wait "$REGISTRY_PID" 2>/dev/null || true
	REGISTRY_PID=''
}
# write_registries FILE: a registries.yaml mirroring the images' registry
# (every reference is under registry.k8s.io) to the run's registry.
write_registries() {
	cat >"$1" <<YAML
mirrors:
  registry.k8s.io:
    endpoint: ["http://$NODE_IP:$REGISTRY_PORT"]
YAML
}
stop_server() {
	stop_upstream
	stop_agent2
	stop_registry
	[ -n "$SERVER_PID" ] || { cleanup_netns; return 0; }
	local pids
	pids=$(pgrep -f -- "$DATA" | grep -vx "$$" || true)
	log "stopping the server (pid $SERVER_PID) with SIGTERM"
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 90); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		log "server still running after 90s: SIGKILL"
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=''
	# Anything the server started (its containerd, shims) that outlived it.
	sleep 2
	for p in $pids $(pgrep -f -- "$DATA" || true); do
		[ "$p" != "$$" ] && kill -0 "$p" 2>/dev/null || continue
		log "left over: pid $p ($(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | cut -c1-120)): SIGKILL"
		kill -KILL "$p" 2>/dev/null || true
	done
	log "$BIN agent --cleanup${NETNS:+ (in $NETNS)}"
	"${NX[@]}" "$BIN" agent --cleanup >>"$OUT/cleanup.log" 2>&1 || log "agent --cleanup exited $?"
	{ grep -o " $DATA[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	if [ -n "$NETNS" ]; then
		for p in $(ip netns pids "$NETNS" 2>/dev/null); do
			log "left over in $NETNS: pid $p ($(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | cut -c1-120)): SIGKILL"
			kill -KILL "$p" 2>/dev/null || true
		done
		ip netns del "$NETNS" 2>/dev/null || log "could not delete netns $NETNS"
		NETNS=''
	fi
	cp "$DATA/agent/containerd/containerd.log" "$OUT/" 2>/dev/null || true
	if ((KEEP_DATA)); then log "data dir kept: $DATA"; else rm -rf "$DATA" 2>/dev/null || log "could not remove all of $DATA"; fi
}
cleanup_netns() { [ -n "$NETNS" ] && ip netns del "$NETNS" 2>/dev/null; NETNS=''; }
trap 'stop_server; cleanup_netns' EXIT
trap 'exit 130' INT TERM

if ((!HOST_NETNS)); then
	NETNS=minik-conformance-$$
	ip netns add "$NETNS"
	NX=(ip netns exec "$NETNS")
	"${NX[@]}" ip link set lo up
	"${NX[@]}" ip link add mkc0 type bridge
	"${NX[@]}" ip addr add "$NODE_IP/24" dev mkc0
	"${NX[@]}" ip link set mkc0 up
	"${NX[@]}" ip route add default dev mkc0
	"${NX[@]}" sysctl -qw net.ipv4.ip_forward=1
	SERVER_NET=(--node-ip "$NODE_IP" --node-name conformance)
	# "ip netns exec" mounts a fresh /sys in a private mount namespace, which
	# hides /sys/fs/cgroup (runc: "no cgroup mount found in mountinfo"): the
	# server's wrapper mounts the host's cgroup hierarchies there again.
	grep ' /sys/fs/cgroup' /proc/mounts >"$OUT/cgroup-mounts.txt" || true
	SERVER_WRAP=(sh -c 'while read -r src mnt type opts rest; do mkdir -p "$mnt" && mount -t "$type" -o "$opts" "$src" "$mnt" || exit 1; done <"$0"; exec "$@"' "$OUT/cgroup-mounts.txt")
	log "network namespace $NETNS (node IP $NODE_IP on a port-less bridge)"
	"${NX[@]}" "$OUT/serve-images" -dir "$WORK/images" -addr "$NODE_IP:$REGISTRY_PORT" -ready "$OUT/registry-images.txt" >"$OUT/registry.log" 2>&1 &
	REGISTRY_PID=$!
	for i in $(seq 1 120); do
		[ -s "$OUT/registry-images.txt" ] && break
		kill -0 "$REGISTRY_PID" 2>/dev/null || { log "the image registry exited; see $OUT/registry.log"; tail -5 "$OUT/registry.log" >&2; exit 1; }
		sleep 1
	done
	[ -s "$OUT/registry-images.txt" ] || { log "the image registry was not ready after 120s"; exit 1; }
	write_registries "$DATA/agent/registries.yaml"
	log "image registry at $NODE_IP:$REGISTRY_PORT (pid $REGISTRY_PID; $(wc -l <"$OUT/registry-images.txt") images, see registry-images.txt), mirrored in registries.yaml"
fi

log "starting: $BIN server --data-dir $DATA --https-listen-port $PORT ${SERVER_NET[*]} ${SERVER_EXTRA[*]}"
"${NX[@]}" "${SERVER_WRAP[@]}" "$BIN" server --data-dir "$DATA" --https-listen-port "$PORT" "${SERVER_NET[@]}" "${SERVER_EXTRA[@]}" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
echo "$SERVER_PID" > "$OUT/server.pid"

for i in $(seq 1 120); do
	[ -s "$KCFG" ] && break
	kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited; see $OUT/server.log"; tail -20 "$OUT/server.log" >&2; exit 1; }
	sleep 1
done
[ -s "$KCFG" ] || { log "no kubeconfig after 120s"; exit 1; }
cp "$KCFG" "$OUT/admin.kubeconfig"
if ((UPSTREAM_CTL)); then
	"${NX[@]}" "$OUT/upstream-controllers" --kubeconfig "$KCFG" --controllers "$UPSTREAM_NAMES" >"$OUT/upstream-controllers.log" 2>&1 &
	UPSTREAM_PID=$!
	log "upstream-controllers running (pid $UPSTREAM_PID, log upstream-controllers.log)"
fi
ready=''
for i in $(seq 1 180); do
	ready=$("${NX[@]}" "$KUBECTL" --kubeconfig "$KCFG" get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}' 2>/dev/null || true)
	case $ready in *=True*) break ;; esac
	sleep 1
done
case $ready in *=True*) log "node ready: $ready" ;; *) log "node not Ready after 180s: '$ready'"; exit 1 ;; esac
if ((NODES > 1)) && ((!HOST_NETNS)); then
	# A second node: its own network namespace, a veth onto the first one's bridge, a joined
	# agent entered with nsenter (network only, so the host's cgroup mounts stay visible).
	NETNS2=minik-conformance-$$-2
	NODE2_IP=${NODE_IP%.*}.2
	ip netns add "$NETNS2"
	ip link add mkc2h netns "$NETNS" type veth peer name eth0 netns "$NETNS2"
	"${NX[@]}" ip link set mkc2h master mkc0 up
	ip netns exec "$NETNS2" ip link set lo up
	ip netns exec "$NETNS2" ip addr add "$NODE2_IP/24" dev eth0
	ip netns exec "$NETNS2" ip link set eth0 up
	ip netns exec "$NETNS2" ip route add default via "$NODE_IP"
	ip netns exec "$NETNS2" sysctl -qw net.ipv4.ip_forward=1
	mkdir -p "$DATA/node2/images" "$DATA/node2/agent/images"
	cp "$WORK"/images/*.tar "$DATA/node2/images/"
	cp "$WORK"/images/*.tar "$DATA/node2/agent/images/"
	write_registries "$DATA/node2/registries.yaml"
	log "starting the second node: agent --join https://$NODE_IP:$PORT --node-ip $NODE2_IP (netns $NETNS2)"
	nsenter --net="/run/netns/$NETNS2" "$BIN" agent --join "https://$NODE_IP:$PORT" --token "$(cat "$DATA/token")" \
		--data-dir "$DATA/node2" --node-name conformance-2 --node-ip "$NODE2_IP" >"$OUT/agent2.log" 2>&1 &
	AGENT2_PID=$!
	for i in $(seq 1 180); do
		ready=$("${NX[@]}" "$KUBECTL" --kubeconfig "$KCFG" get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}' 2>/dev/null || true)
		[ "$(echo "$ready" | grep -o '=True' | wc -l)" -ge 2 ] && break
		kill -0 "$AGENT2_PID" 2>/dev/null || { log "the second node's agent exited; see $OUT/agent2.log"; tail -5 "$OUT/agent2.log" >&2; exit 1; }
		sleep 1
	done
	case $(echo "$ready" | grep -o '=True' | wc -l) in 2) log "nodes ready: $ready" ;; *) log "second node not Ready after 180s: '$ready'"; exit 1 ;; esac
fi
"${NX[@]}" "$KUBECTL" --kubeconfig "$KCFG" get nodes -o wide >"$OUT/nodes.txt" 2>&1 || true
"${NX[@]}" "$KUBECTL" --kubeconfig "$KCFG" api-resources >"$OUT/api-resources.txt" 2>&1 || true

if ((ADD_K8S_SVC)); then
	log "workaround: creating Service default/kubernetes and its Endpoints"
	NODE_ADDR=$("${NX[@]}" "$KUBECTL" --kubeconfig "$KCFG" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
	NODE_ADDR=${NODE_ADDR:-$NODE_IP}
	cat >"$OUT/kubernetes-service.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: kubernetes, namespace: default, labels: {component: apiserver, provider: kubernetes}}
spec:
  type: ClusterIP
  clusterIP: 10.43.0.1
  ports: [{name: https, port: 443, protocol: TCP, targetPort: $PORT}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: kubernetes, namespace: default, labels: {endpointslice.kubernetes.io/skip-mirror: "true"}}
subsets:
- addresses: [{ip: $NODE_ADDR}]
  ports: [{name: https, port: $PORT, protocol: TCP}]
YAML
	"${NX[@]}" "$KUBECTL" --kubeconfig "$KCFG" apply -f "$OUT/kubernetes-service.yaml" 2>&1 | tee -a "$OUT/run.log" >&2 || true
fi

# Flags for a bare cluster: the skeleton provider (no cloud), no node-level
# log dumps over SSH, no image pre-pulling, and the kubectl the specs call.
E2E_ARGS=(
	--kubeconfig "$KCFG"
	--provider=skeleton
	--kubectl-path "$KUBECTL"
	--e2e-verify-service-account="$VERIFY_SA"
	--prepull-images=false
	--dump-logs-on-failure=true
	--allowed-not-ready-nodes=0
)
SKIP_RE=''
((SKIP_SERIAL)) && SKIP_RE='\[Serial\]|\[Disruptive\]'
[ -n "$SKIP" ] && SKIP_RE="${SKIP_RE:+$SKIP_RE|}$SKIP"

# phase NAME PROCS TIMEOUT EXTRA-SKIP LABEL-FILTER
phase() {
	local name=$1 procs=$2 timeout=$3 skip=$4 labels=$5 rc=0
	local skip_re=$SKIP_RE
	[ -n "$skip" ] && skip_re="${skip_re:+$skip_re|}$skip"
	log "phase $name: focus='$FOCUS' skip='$skip_re' labels='$labels' procs=$procs timeout=$timeout"
	# An empty --skip would compile to a regex that matches (skips) everything.
	local sel=(--focus="$FOCUS")
	[ -n "$skip_re" ] && sel+=(--skip="$skip_re")
	[ -n "$labels" ] && sel+=(--label-filter="$labels")
	local start=$SECONDS
	if ((procs > 1)); then
		"${NX[@]}" "$GINKGO" run --procs="$procs" --timeout="$timeout" "${sel[@]}" --no-color -v \
			--output-dir="$OUT" --json-report="$name.json" --junit-report="$name.junit.xml" \
			"$E2E" -- "${E2E_ARGS[@]}" >"$OUT/$name.log" 2>&1 || rc=$?
	else
		"${NX[@]}" "$E2E" --ginkgo.timeout="$timeout" "${sel[@]/#--/--ginkgo.}" --ginkgo.no-color --ginkgo.v \
			--ginkgo.json-report="$OUT/$name.json" --ginkgo.junit-report="$OUT/$name.junit.xml" \
			"${E2E_ARGS[@]}" >"$OUT/$name.log" 2>&1 || rc=$?
	fi
	log "phase $name: exit $rc after $((SECONDS - start))s"
}

if ((PROCS > 1)); then
	phase parallel "$PROCS" "$TIMEOUT" '\[Serial\]' ''
	((SKIP_SERIAL)) || phase serial 1 "$SERIAL_TIMEOUT" '' 'Serial'
else
	phase all 1 "$TIMEOUT" '' ''
fi

"${NX[@]}" "$KUBECTL" --kubeconfig "$KCFG" get all -A >"$OUT/objects-at-end.txt" 2>&1 || true
stop_server
python3 "$HERE/summarize.py" "$OUT"/*.json | tee "$OUT/summary.txt"
log "results in $OUT"
