#!/usr/bin/env bash
# Tears the local cluster down: stops every component by its recorded PID,
# the pods' processes, then removes mounts, network namespaces, the bridge,
# the iptables chains of kube-proxy, kubelet and CNI, the node address and the
# host settings up.sh changed; the network guard goes last. Keeps the state
# directory (so up.sh brings the same cluster back, pods included) unless
# --wipe is given.
set -euo pipefail
# shellcheck source=e2e/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

wipe=false
[[ ${1:-} == --wipe ]] && wipe=true
((EUID == 0)) || die "must run as root"

# stop NAME: SIGTERM, then SIGKILL after 15 s.
stop() {
	local name=$1 pid i
	if pid=$(pid_of "$name"); then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			[[ -d /proc/$pid ]] || break
			sleep 0.1
		done
		if [[ -d /proc/$pid ]]; then
			log "$name did not stop in 15 s, killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		log "stopped $name (pid $pid)"
	fi
	rm -f "$PIDS/$name.pid"
}

# kubepods_procs lists the processes of every pod (the kubelet's cgroups).
kubepods_procs() {
	find /sys/fs/cgroup -path '*/kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

stop_pods() {
	local ctr=("$BIN/ctr" --address "$CONTAINERD_SOCK" -n k8s.io) id pid i
	if pid_of containerd >/dev/null; then
		for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
			"${ctr[@]}" tasks kill -s SIGKILL --all "$id" >/dev/null 2>&1 || true
		done
	fi
	for ((i = 0; i < 50; i++)); do
		[[ -z $(kubepods_procs) ]] && break
		for pid in $(kubepods_procs); do kill -KILL "$pid" 2>/dev/null || true; done
		sleep 0.1
	done
	if pid_of containerd >/dev/null; then
		for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
			"${ctr[@]}" tasks delete --force "$id" >/dev/null 2>&1 || true
		done
	fi
	# Shims left behind by a containerd that died: found by our socket path.
	for pid in $(grep -lsF -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
		[[ $(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline) == *containerd-shim-runc-v2*"-address $CONTAINERD_SOCK"* ]] || continue
		kill -KILL "$pid" 2>/dev/null || true
	done
}

# our_mounts lists mount points of the cluster, deepest first.
our_mounts() {
	awk '{ print $5 }' /proc/self/mountinfo | sed 's/\\040/ /g' |
		grep -E "^($STATE|$RUN_DIR|/run/netns/cni-|/var/run/netns/cni-)" | awk '{ print length, $0 }' |
		sort -rn | cut -d' ' -f2- || true
}

unmount_all() {
	local m i
	for ((i = 0; i < 3; i++)); do
		while IFS= read -r m; do
			if [[ -n $m ]]; then umount -l "$m" 2>/dev/null || true; fi
		done < <(our_mounts)
	done
}

remove_netns() {
	local before="" ns
	[[ -f $STATE/host.saved ]] && before=$(sed -n 's/^netns_before=//p' "$STATE/host.saved")
	for ns in /var/run/netns/cni-*; do
		[[ -e $ns ]] || continue
		ns=${ns##*/}
		[[ " $before " != *" $ns "* ]] || continue
		ip netns delete "$ns" 2>/dev/null || rm -f "/var/run/netns/$ns"
	done
}

# remove_chains CMD: deletes every KUBE-* and CNI-* chain, and the jumps to them.
remove_chains() {
	local ipt=$1 table rule chain
	command -v "$ipt" >/dev/null || return 0
	for table in filter nat mangle raw; do
		"$ipt" -w -t "$table" -S >/dev/null 2>&1 || continue
		while IFS= read -r rule; do
			# iptables -S quotes its output for a shell, so eval keeps comments whole.
			eval "\"\$ipt\" -w -t \"\$table\" ${rule/#-A/-D}" 2>/dev/null || true
		done < <("$ipt" -w -t "$table" -S | grep -E '^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j (KUBE-|CNI-)')
		for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ { print $2 }'); do
			"$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
		done
		for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ { print $2 }'); do
			"$ipt" -w -t "$table" -X "$chain" 2>/dev/null || true
		done
	done
}

# remove_ipsets destroys the ipsets kube-router made (its policy chains,
# KUBE-*, went with remove_chains; the sets outlive it).
remove_ipsets() {
	local set
	command -v ipset >/dev/null || return 0
	for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-|inet6:KUBE-)' || true); do
		ipset destroy "$set" 2>/dev/null || true
	done
}

remove_cgroups() {
	local d
	find /sys/fs/cgroup -depth -type d -path '*/kubepods*' 2>/dev/null | while IFS= read -r d; do
		rmdir "$d" 2>/dev/null || true
	done
}

restore_host() {
	local saved=$STATE/host.saved v
	if has_node_ip; then ip addr del "$NODE_IP/32" dev lo; fi
	ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
	if [[ -f $saved ]]; then
		v=$(sed -n 's/^ip_forward=//p' "$saved")
		[[ -n $v ]] && echo "$v" >/proc/sys/net/ipv4/ip_forward
		v=$(sed -n 's/^bridge_nf=//p' "$saved")
		[[ -n $v && -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] && echo "$v" >/proc/sys/net/bridge/bridge-nf-call-iptables
		v=$(sed -n 's/^root_propagation=//p' "$saved")
		[[ $v == private ]] && mount --make-rprivate /
		rm -f "$saved"
	fi
}

remove_guard() {
	local rule
	while IFS= read -r rule; do
		# shellcheck disable=SC2086
		iptables -w -t mangle ${rule/#-A/-D}
	done < <(iptables -w -t mangle -S POSTROUTING | grep -F -- "--comment $GUARD_COMMENT" || true)
}

stop_all() { local name; for name in "$@"; do stop "$name"; done; }
step "node components" stop_all kube-router kube-proxy kube-scheduler kube-controller-manager kubelet
step "pods" stop_pods
step "containerd, control plane, registry" stop_all containerd kube-apiserver etcd registry
step "mounts, namespaces" eval "unmount_all; remove_netns"
step "iptables chains" eval "remove_chains iptables; remove_chains ip6tables; remove_ipsets"
step "cgroups, host settings" eval "remove_cgroups; restore_host"
[[ -z $(our_mounts) ]] || die "mounts remain under the cluster's directories: $(our_mounts | tr '\n' ' ')"
rm -rf "$RUN_DIR"
if $wipe; then
	rm -rf "$STATE"
	log "wiped $STATE"
fi
# Last: the guard, once nothing of the cluster can send any more.
remove_guard
log "down"
