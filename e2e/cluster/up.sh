#!/usr/bin/env bash
# Brings up the single-node local cluster: network guard first, then the
# registry, the test images, etcd, containerd, the control plane, the kubelet
# and kube-proxy; waits until the node is Ready and a test pod runs. Prints
# how long each step took. Run as root; idempotent (a running cluster is left
# alone, a stopped one is started again with its data, so pods survive).
# The components' configuration files are rendered from templates/ (render
# in lib.sh); the certificates and kubeconfigs are kubeadm's.
set -euo pipefail
# shellcheck source=e2e/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

((EUID == 0)) || die "must run as root (mounts, iptables, network namespaces)"
for b in etcd kubeadm kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl containerd containerd-shim-runc-v2 ctr kube-router; do
	[[ -x $BIN/$b ]] || die "$BIN/$b is missing: run make tools"
done

# Every component, in start order.
COMPONENTS=(registry etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-router)
if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null; then
	missing=()
	for c in "${COMPONENTS[@]}"; do
		pid_of "$c" >/dev/null || missing+=("$c")
	done
	if ((${#missing[@]} == 0)); then
		guard_check || die "the cluster runs without its network guard (mangle POSTROUTING DROP rules); run make cluster-down, then make cluster-up"
		log "already running (kubeconfig $KUBECONFIG_FILE)"
		exit 0
	fi
	# A bring-up that failed half-way (or a component that died since)
	# leaves a cluster that answers but is not whole, for example without
	# kube-router's NetworkPolicy: start it again (the remains are cleaned
	# up below, the data kept).
	log "partly running (not running: ${missing[*]}): starting it again"
fi
# The run directory names the state directory of the cluster that uses the
# host (one cluster per machine: node address, ports and bridge are fixed).
if [[ -f $RUN_DIR/owner && $(<"$RUN_DIR/owner") != "$STATE" ]]; then
	other=$(<"$RUN_DIR/owner")
	# Stopped by its own recorded PIDs, its host changes undone with its own
	# record; its data stays.
	log "stopping the cluster of $other (one cluster per machine)"
	SANDBOX_CLUSTER_DIR=$other "$(dirname "$0")/down.sh"
fi
# Leftovers of a cluster whose processes died (a killed session, a crash):
# clean up the host state, keep the data.
if compgen -G "$PIDS/*.pid" >/dev/null || [[ -e $RUN_DIR ]] || ip link show "$BRIDGE" >/dev/null 2>&1; then
	log "cleaning up the remains of a previous run"
	"$(dirname "$0")/down.sh"
fi

mkdir -p "$STATE" "$PKI" "$LOGS" "$PIDS" "$RUN_DIR"
echo "$STATE" >"$RUN_DIR/owner"
t_start=$(now_ms)

# --- 1. network guard: nothing from the pod range or to the pod and Service
# ranges leaves through an external interface. Installed before anything
# starts; the bring-up refuses to go on without it.
install_guard() {
	local rule
	while read -r rule; do
		[[ -n $rule ]] || continue
		# shellcheck disable=SC2086
		iptables -w -t mangle -C POSTROUTING $rule 2>/dev/null || iptables -w -t mangle -I POSTROUTING $rule
	done < <(guard_rules)
	guard_check || die "network guard: the mangle POSTROUTING DROP rules are not in place; refusing to start"
	log "network guard on $(external_ifaces | tr '\n' ' ')(pods $POD_CIDR, services $SERVICE_CIDR)"
}

# --- 2. host settings, each recorded so that teardown restores it.
host_setup() {
	local saved=$STATE/host.saved
	if [[ ! -f $saved ]]; then
		{
			echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
			echo "bridge_nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo)"
			echo "root_propagation=$(findmnt -no PROPAGATION /)"
			echo "netns_before=$(find /var/run/netns -maxdepth 1 -name 'cni-*' -printf '%f ' 2>/dev/null)"
		} >"$saved"
	fi
	has_node_ip || ip addr add "$NODE_IP/32" dev lo
	echo 1 >/proc/sys/net/ipv4/ip_forward
	[[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] && echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
	# Mount propagation for the kubelet's volumes (/ is private here).
	mount --make-rshared /
	mkdir -p /var/run/netns
}

# --- 3. certificates and kubeconfigs: kubeadm's certs and kubeconfig phases,
# from templates/kubeadm.yaml. Each file is made once per state directory and
# kept after (a second run, or the data of an older bring-up, reuses it).
# kubeadm_once FILE ARGS...: runs kubeadm ARGS unless FILE exists; its output
# goes to $LOGS/kubeadm.log.
kubeadm_once() {
	local file=$1
	shift
	[[ -f $file ]] && return 0
	"$BIN/kubeadm" "$@" --config "$STATE/kubeadm.yaml" >>"$LOGS/kubeadm.log" 2>&1 ||
		fail_component kubeadm "kubeadm $* failed"
}

# kubeconfig_user FILE CN [O]: a kubeconfig with a client certificate kubeadm
# has no phase for, valid as long as the others.
kubeconfig_user() {
	local file=$1 cn=$2 o=${3:-}
	[[ -f $file ]] && return 0
	"$BIN/kubeadm" kubeconfig user --config "$STATE/kubeadm.yaml" --client-name "$cn" ${o:+--org "$o"} \
		--validity-period "$CERT_VALIDITY" >"$file.tmp" 2>>"$LOGS/kubeadm.log" ||
		fail_component kubeadm "kubeadm kubeconfig user $cn failed"
	mv "$file.tmp" "$file"
}

# Every certificate is valid for ten years (the CA too).
CERT_VALIDITY=87600h

make_pki() {
	local KUBE_VERSION cert conf
	# Given to kubeadm, so that it asks no one for the latest release.
	# shellcheck disable=SC2034 # read by render (templates/kubeadm.yaml)
	KUBE_VERSION=$("$BIN/kubeadm" version -o short)
	render kubeadm.yaml >"$STATE/kubeadm.yaml"
	umask 077
	mkdir -p "$KUBECONFIGS"
	# The CA, the API server's serving certificate, its client certificate
	# for the kubelet, and the service-account signing key.
	for cert in ca apiserver apiserver-kubelet-client; do
		kubeadm_once "$PKI/$cert.crt" init phase certs "$cert"
	done
	kubeadm_once "$PKI/sa.key" init phase certs sa
	for conf in controller-manager scheduler kubelet; do
		kubeadm_once "$KUBECONFIGS/$conf.conf" init phase kubeconfig "$conf" --kubeconfig-dir "$KUBECONFIGS"
	done
	kubeconfig_user "$KUBECONFIGS/kube-proxy.conf" system:kube-proxy
	# The admin's: kubeadm's admin.conf would need a ClusterRoleBinding
	# first; this one is in system:masters from the start.
	kubeconfig_user "$KUBECONFIG_FILE" kubernetes-admin system:masters
	umask 022
}

# start NAME CMD...: starts a component in its own session, logging to
# $LOGS/NAME.log and recording its PID.
start() {
	local name=$1
	shift
	pid_of "$name" >/dev/null && return 0
	echo "=== start $(date -u +%FT%TZ): $*" >>"$LOGS/$name.log"
	# The daemon keeps no descriptor of its caller beyond 0-2: an inherited
	# lock (flock around `make e2e`) or pipe would stay held for the
	# cluster's whole life.
	(
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
		done
		exec setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null
	) &
	local pid=$! i
	echo "$pid" >"$PIDS/$name.pid"
	# Until the subshell has closed its descriptors and exec'd, its command
	# line is this script's, and pid_of (which compares it, against
	# recycled PIDs) would report the component gone: wait for the exec.
	for ((i = 0; i < 250; i++)); do
		[[ -d /proc/$pid && $(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline) != *"$name"* ]] || return 0
		sleep 0.02
	done
}

# --- 4. the registry (Debian's docker-registry) on the node IP.
start_registry() {
	mkdir -p "$STATE/registry"
	render registry.yml >"$STATE/registry/config.yml"
	start registry docker-registry serve "$STATE/registry/config.yml"
	wait_for registry 30 curl -fsS "http://$REGISTRY/v2/"
}

# --- 5. the test images: our pause (the sandbox image), busybox, hello.
push_test_images() {
	local out=$STATE/images
	mkdir -p "$out"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$out/" ./cmd/sandbox-image ./e2e/images/pause ./e2e/images/hello)
	"$out/sandbox-image" -kind pause -binary "$out/pause" -ref "$PAUSE_IMAGE" -push -insecure
	"$out/sandbox-image" -kind hello -binary "$out/hello" -ref "$HELLO_IMAGE" -push -insecure
	"$out/sandbox-image" -kind busybox -binary /bin/busybox -ref "$BUSYBOX_IMAGE" -push -insecure
}

start_etcd() {
	mkdir -p "$STATE/etcd"
	start etcd "$BIN/etcd" --name node --data-dir "$STATE/etcd" \
		--listen-client-urls "$ETCD_CLIENT_URL" --advertise-client-urls "$ETCD_CLIENT_URL" \
		--listen-peer-urls "$ETCD_PEER_URL" --initial-advertise-peer-urls "$ETCD_PEER_URL" \
		--initial-cluster "node=$ETCD_PEER_URL" --unsafe-no-fsync --log-level warn
	wait_for etcd 60 curl -fsS "$ETCD_CLIENT_URL/health"
}

start_containerd() {
	local c=$STATE/containerd
	mkdir -p "$c/certs.d/$REGISTRY" "$c/certs.d/_default" "$STATE/cni/net.d" "$STATE/cni/ipam"
	render hosts-default.toml >"$c/certs.d/_default/hosts.toml"
	render hosts-registry.toml >"$c/certs.d/$REGISTRY/hosts.toml"
	render cni.conflist >"$STATE/cni/net.d/10-sandbox.conflist"
	render containerd.toml >"$c/config.toml"
	# The shim and runc must be found on PATH.
	PATH=$BIN:$PATH start containerd "$BIN/containerd" --config "$c/config.toml"
	wait_for containerd 60 "$BIN/ctr" --address "$CONTAINERD_SOCK" version
}

start_apiserver() {
	start kube-apiserver "$BIN/kube-apiserver" \
		--advertise-address "$NODE_IP" --bind-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
		--etcd-servers "$ETCD_CLIENT_URL" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--client-ca-file "$PKI/ca.crt" \
		--tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
		--kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types InternalIP \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$PKI/sa.pub" \
		--service-account-signing-key-file "$PKI/sa.key" \
		--authorization-mode Node,RBAC \
		--enable-admission-plugins NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
		--allow-privileged=true \
		--profiling="${SANDBOX_APISERVER_PROFILING:-false}" \
		--v=1
	wait_for kube-apiserver 120 kctl get --raw /readyz
	render kubelet-api-admin.yaml | kctl apply -f - >/dev/null
}

start_controllers() {
	start kube-controller-manager "$BIN/kube-controller-manager" \
		--kubeconfig "$KUBECONFIGS/controller-manager.conf" \
		--authentication-kubeconfig "$KUBECONFIGS/controller-manager.conf" \
		--authorization-kubeconfig "$KUBECONFIGS/controller-manager.conf" \
		--bind-address 127.0.0.1 --leader-elect=false \
		--service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
		--cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
		--use-service-account-credentials=true \
		--service-cluster-ip-range "$SERVICE_CIDR" --cluster-name sandbox --v=1
	start kube-scheduler "$BIN/kube-scheduler" \
		--kubeconfig "$KUBECONFIGS/scheduler.conf" \
		--authentication-kubeconfig "$KUBECONFIGS/scheduler.conf" \
		--authorization-kubeconfig "$KUBECONFIGS/scheduler.conf" \
		--bind-address 127.0.0.1 --leader-elect=false --v=1
}

start_kubelet() {
	local k=$STATE/kubelet
	mkdir -p "$k/root" "$k/pki"
	# No cluster DNS: a resolv.conf that keeps name lookups on the machine.
	printf 'nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n' >"$k/resolv.conf"
	render kubelet.yaml >"$k/config.yaml"
	# Heartbeats have a precision of one second.
	KUBELET_STARTED=$(date -u +%FT%TZ)
	start kubelet "$BIN/kubelet" --config "$k/config.yaml" --kubeconfig "$KUBECONFIGS/kubelet.conf" \
		--root-dir "$k/root" --cert-dir "$k/pki" \
		--hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
	wait_for kubelet 60 kctl get node "$NODE_NAME"
}

# kube-proxy starts once the Node exists: it exits when the node's IPs
# change after it started.
start_kube_proxy() {
	render kube-proxy.yaml >"$STATE/kube-proxy.yaml"
	start kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml" --v=1
	wait_for kube-proxy 60 curl -fsS http://127.0.0.1:10256/healthz
}

# kube-router's firewall alone enforces NetworkPolicy, with iptables and
# ipset (the kernel has no nftables queue, so kube-network-policies cannot);
# routing stays with the CNI bridge and Services with kube-proxy. Like
# kube-proxy it starts once the Node exists (it reads the node's address).
start_kube_router() {
	command -v ipset >/dev/null || die "ipset is missing (kube-router needs it): run hack/install-deps.sh"
	start kube-router "$BIN/kube-router" --kubeconfig "$KUBECONFIG_FILE" \
		--run-firewall=true --run-router=false --run-service-proxy=false \
		--hostname-override "$NODE_NAME" --service-cluster-ip-range "$SERVICE_CIDR" \
		--health-port "$KUBE_ROUTER_HEALTH_PORT" --metrics-port 0 --v=1
	wait_for kube-router 60 curl -fsS "http://127.0.0.1:$KUBE_ROUTER_HEALTH_PORT/healthz"
}

# node_ready_now succeeds when the node is Ready by a heartbeat of this
# kubelet (after a restart the stored condition still says Ready).
node_ready_now() {
	local out status beat
	out=$(kctl get node "$NODE_NAME" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}') || return 1
	read -r status beat <<<"$out"
	[[ $status == True && ! $beat < $KUBELET_STARTED ]]
}

wait_node_ready() {
	wait_for kubelet 120 node_ready_now
	wait_for kube-controller-manager 60 kctl -n default get serviceaccount default
}

# The smoke pod proves scheduling, the sandbox (our pause image), CNI, the
# registry pull and a container start.
smoke_pod() {
	kctl -n default delete pod cluster-smoke --ignore-not-found --wait=false >/dev/null
	render smoke-pod.yaml | kctl apply -f - >/dev/null
	if ! kctl -n default wait --for=condition=Ready pod/cluster-smoke --timeout=120s >/dev/null; then
		kctl -n default describe pod cluster-smoke | tail -20 >&2 || true
		log_tail containerd
		fail_component kubelet "the smoke pod did not become Ready"
	fi
	kctl -n default delete pod cluster-smoke --wait=false >/dev/null
}

"$ROOT/hack/install-deps.sh"
step "network guard" install_guard
step "host settings" host_setup
step "certificates" make_pki
step "registry" start_registry
step "test images" push_test_images
step "etcd" start_etcd
step "containerd" start_containerd
step "kube-apiserver" start_apiserver
step "controller-manager, scheduler" start_controllers
step "kubelet (node registered)" start_kubelet
step "kube-proxy" start_kube_proxy
step "kube-router (NetworkPolicy)" start_kube_router
step "node Ready" wait_node_ready
step "smoke pod Ready" smoke_pod
log "up in $(awk -v ms=$(($(now_ms) - t_start)) 'BEGIN { printf "%.1f", ms / 1000 }') s; export KUBECONFIG=$KUBECONFIG_FILE; registry $REGISTRY"
