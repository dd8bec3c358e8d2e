#!/usr/bin/env bash
# Checks the cluster's life cycle on the real machine: a pod survives
# down + up without wiping (same UID, Ready again), and after down the host
# has none of the cluster's processes, mounts, namespaces, bridge, node
# address, iptables chains or guard rules left. Leaves the cluster up.
# It stops the cluster in between: run it alone, not beside other e2e tests.
set -euo pipefail
# shellcheck source=e2e/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

fail() { printf 'restart-test: FAIL: %s\n' "$*" >&2; exit 1; }
here=$(dirname "$0")

"$here/up.sh" >/dev/null
kctl -n default delete pod restart-keeper --ignore-not-found --wait=true >/dev/null
kctl -n default run restart-keeper --image="$BUSYBOX_IMAGE" --restart=Always -- sh -c 'exec sleep 3600' >/dev/null
kctl -n default wait --for=condition=Ready pod/restart-keeper --timeout=120s >/dev/null
uid=$(kctl -n default get pod restart-keeper -o jsonpath='{.metadata.uid}')

"$here/down.sh" >/dev/null
problems=()
for name in "${COMPONENTS[@]}"; do
	[[ -f $PIDS/$name.pid ]] && problems+=("pid file of $name left")
done
[[ -n $(find /sys/fs/cgroup -path '*/kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null) ]] && problems+=("pod processes left")
grep -qE " ($STATE|$RUN_DIR)[/ ]" /proc/self/mountinfo && problems+=("mounts left")
compgen -G "/var/run/netns/cni-*" >/dev/null && problems+=("network namespaces left")
ip link show "$BRIDGE" >/dev/null 2>&1 && problems+=("bridge $BRIDGE left")
has_node_ip && problems+=("node address left on lo")
[[ -n $(iptables-save | grep -E '^:(KUBE-|CNI-)') ]] && problems+=("KUBE-/CNI- iptables chains left")
[[ -n $(iptables -w -t mangle -S POSTROUTING | grep -F -- "$GUARD_COMMENT") ]] && problems+=("guard rules left")
[[ -e $RUN_DIR ]] && problems+=("$RUN_DIR left")
((${#problems[@]} == 0)) || fail "after down: ${problems[*]}"
echo "restart-test: down left the host clean"

"$here/up.sh" >/dev/null
kctl -n default wait --for=condition=Ready pod/restart-keeper --timeout=120s >/dev/null ||
	fail "the pod did not come back Ready after up"
[[ $(kctl -n default get pod restart-keeper -o jsonpath='{.metadata.uid}') == "$uid" ]] ||
	fail "the pod came back with another UID"
kctl -n default delete pod restart-keeper --wait=false >/dev/null
echo "restart-test: the pod survived down and up (uid $uid)"
echo "restart-test: PASS"
