# shellcheck shell=bash disable=SC2034  # settings are used by the scripts that source this file
# Shared settings and helpers of the local cluster scripts (sourced, not run).
#
# Every setting can be overridden from the environment:
#   SANDBOX_CLUSTER_DIR      state: certificates, etcd data, logs, PIDs, kubeconfig
#                            (default <repo>/_out/cluster)
#   SANDBOX_CLUSTER_RUN_DIR  sockets and containerd's state; short, since Unix
#                            socket paths are limited to 108 bytes
#                            (default /run/sandbox-cluster)
#   SANDBOX_CLUSTER_NODE_IP  the node's address, put on lo (default 10.250.0.1)
#   SANDBOX_APISERVER_PROFILING  true serves the API server's /debug/pprof
#                            (kubectl get --raw '/debug/pprof/profile?seconds=10'),
#                            to see where its CPU goes during a bench (default false)
# The kubeconfig is $SANDBOX_CLUSTER_DIR/kubeconfig; the registry is
# $NODE_IP:5000, reached over plain HTTP by containerd and by pods.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$ROOT/bin}
STATE=${SANDBOX_CLUSTER_DIR:-$ROOT/_out/cluster}
RUN_DIR=${SANDBOX_CLUSTER_RUN_DIR:-/run/sandbox-cluster}
NODE_NAME=${SANDBOX_CLUSTER_NODE:-sandbox-node}
NODE_IP=${SANDBOX_CLUSTER_NODE_IP:-10.250.0.1}
POD_CIDR=${SANDBOX_CLUSTER_POD_CIDR:-10.244.0.0/24}
POD_GATEWAY=${POD_CIDR%.*}.1
SERVICE_CIDR=${SANDBOX_CLUSTER_SERVICE_CIDR:-10.96.0.0/24}
KUBERNETES_SERVICE_IP=${SERVICE_CIDR%.*}.1
BRIDGE=${SANDBOX_CLUSTER_BRIDGE:-sbx0}
REGISTRY_PORT=5000
REGISTRY=$NODE_IP:$REGISTRY_PORT
APISERVER_PORT=6443
# kube-router's health endpoint (its firewall enforces NetworkPolicy).
KUBE_ROUTER_HEALTH_PORT=20244
ETCD_CLIENT_URL=http://127.0.0.1:12379
ETCD_PEER_URL=http://127.0.0.1:12380
# Tag of the test images (pause, busybox, hello) the bring-up pushes.
TEST_IMAGE_TAG=e2e
PAUSE_IMAGE=$REGISTRY/pause:$TEST_IMAGE_TAG
BUSYBOX_IMAGE=$REGISTRY/busybox:$TEST_IMAGE_TAG
HELLO_IMAGE=$REGISTRY/hello:$TEST_IMAGE_TAG

PKI=$STATE/pki
# The components' kubeconfigs (kubeadm's names: controller-manager.conf, ...).
KUBECONFIGS=$STATE/kubeconfigs
LOGS=$STATE/logs
PIDS=$STATE/pids
KUBECONFIG_FILE=$STATE/kubeconfig
CONTAINERD_SOCK=$RUN_DIR/containerd.sock
CNI_BIN_DIR=${SANDBOX_CLUSTER_CNI_BIN_DIR:-/usr/lib/cni}
# The components' configuration files, filled in by render.
TEMPLATES=$ROOT/e2e/cluster/templates
# Every iptables rule of the network guard carries this comment.
GUARD_COMMENT=sandbox-injector-guard

# The components, in start order; teardown stops them in reverse.
COMPONENTS=(registry etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-router)

log() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

# now_ms prints milliseconds since the epoch.
now_ms() { date +%s%3N; }

# step NAME CMD...: runs CMD and prints how long it took.
step() {
	local name=$1 t0
	shift
	t0=$(now_ms)
	"$@"
	printf 'cluster: %-34s %6.2f s\n' "$name" "$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { print ms / 1000 }')"
}

# pid_of NAME prints the recorded PID of a component if it is alive.
pid_of() {
	local f=$PIDS/$1.pid pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ -n $pid && -d /proc/$pid ]] || return 1
	# A recycled PID belongs to another program: compare the executable.
	[[ $(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline) == *"$1"* ]] || return 1
	echo "$pid"
}

# log_tail NAME prints the end of a component's log.
log_tail() {
	printf -- '--- last lines of %s ---\n' "$LOGS/$1.log" >&2
	tail -n "${2:-25}" "$LOGS/$1.log" >&2 2>/dev/null || true
	printf -- '---\n' >&2
}

# fail_component NAME MESSAGE: reports a failed component with its log tail.
fail_component() {
	log_tail "$1"
	die "$1: $2"
}

# wait_for NAME SECONDS CMD...: retries CMD every 0.2 s until it succeeds;
# fails naming the component (with its log) when it does not within SECONDS
# or when the component's process exits.
wait_for() {
	local name=$1 secs=$2 deadline
	shift 2
	deadline=$(($(now_ms) + secs * 1000))
	until "$@" >/dev/null 2>&1; do
		# Gone on two looks 0.2 s apart: a process in the middle of exec
		# (setsid becoming the component) reads as having no command line.
		if [[ -f $PIDS/$name.pid ]] && ! pid_of "$name" >/dev/null && ! { sleep 0.2 && pid_of "$name" >/dev/null; }; then
			fail_component "$name" "exited while starting"
		fi
		if (($(now_ms) > deadline)); then
			fail_component "$name" "not ready after ${secs} s (waited for: $*)"
		fi
		sleep 0.2
	done
}

# render TEMPLATE prints $TEMPLATES/TEMPLATE with every ${NAME} replaced by
# the value of the shell variable NAME; a NAME that is not set is an error.
render() {
	local text name re='\$\{([A-Za-z_][A-Za-z0-9_]*)\}'
	text=$(<"$TEMPLATES/$1")
	while [[ $text =~ $re ]]; do
		name=${BASH_REMATCH[1]}
		[[ -v $name ]] || die "template $1: \${$name} is not set"
		text=${text//"\${$name}"/"${!name}"}
	done
	printf '%s\n' "$text"
}

# has_node_ip succeeds when the node address is on lo. (No `| grep -q`:
# under pipefail, grep closing the pipe early can fail the pipeline.)
has_node_ip() { [[ -n $(ip -o addr show dev lo to "$NODE_IP/32") ]]; }

# kctl runs kubectl against the cluster.
kctl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# external_ifaces lists the interfaces traffic could leave the machine by:
# every interface but lo, our bridge and pod veths.
external_ifaces() {
	ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
		grep -vxE "lo|$BRIDGE|veth.*|cni.*" || true
}

# guard_rules prints one iptables rule spec (without the chain) per line.
guard_rules() {
	local ifc
	for ifc in $(external_ifaces); do
		echo "-o $ifc -s $POD_CIDR -m comment --comment $GUARD_COMMENT -j DROP"
		echo "-o $ifc -d $POD_CIDR -m comment --comment $GUARD_COMMENT -j DROP"
		echo "-o $ifc -d $SERVICE_CIDR -m comment --comment $GUARD_COMMENT -j DROP"
	done
}

# guard_check succeeds when every guard rule is in mangle POSTROUTING.
guard_check() {
	local rule n=0
	while read -r rule; do
		[[ -n $rule ]] || continue
		# shellcheck disable=SC2086
		iptables -w -t mangle -C POSTROUTING $rule || return 1
		n=$((n + 1))
	done < <(guard_rules)
	((n > 0))
}
