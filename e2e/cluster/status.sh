#!/usr/bin/env bash
# Prints the state of the local cluster: each component's PID, the network
# guard, the node and the pods. Exits 1 when a component is not running.
set -euo pipefail
# shellcheck source=e2e/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

ok=true
for name in "${COMPONENTS[@]}"; do
	if pid=$(pid_of "$name"); then
		printf 'cluster: %-26s running (pid %s)\n' "$name" "$pid"
	else
		printf 'cluster: %-26s stopped\n' "$name"
		ok=false
	fi
done
if guard_check 2>/dev/null; then
	log "network guard             in place"
else
	log "network guard             MISSING"
	ok=false
fi
log "kubeconfig                $KUBECONFIG_FILE"
log "registry                  $REGISTRY"
if pid_of kube-apiserver >/dev/null; then
	kctl get nodes -o wide 2>&1 || true
	kctl get pods -A 2>&1 || true
fi
$ok
