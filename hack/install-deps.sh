#!/usr/bin/env bash
# Installs the Debian packages the local cluster (e2e/) and the images need,
# reusing whatever is already installed. apt-get update runs only when
# something is missing. Needs root (the cluster itself needs root too).
#
#   hack/install-deps.sh            install what is missing
#   hack/install-deps.sh --check    only report; exit 1 when something is missing
set -euo pipefail

packages=(
	runc                        # OCI runtime used by containerd-shim-runc-v2
	containernetworking-plugins # bridge, host-local, loopback, portmap in /usr/lib/cni
	iptables                    # kube-proxy (iptables mode) and the network guard
	ipset                       # kube-router's firewall (NetworkPolicy) keeps its address sets in it
	conntrack                   # kube-proxy clears stale UDP entries with it
	busybox-static              # the shell test image (e2e/images/busybox)
	docker-registry             # the local image registry
	util-linux                  # mount, nsenter, unshare
	iproute2                    # ip: node address, bridge, namespaces
	ca-certificates             # CA bundle copied into scratch images
	curl                        # readiness checks of the bring-up
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi
if [[ ${1:-} == --check ]]; then
	echo "install-deps: missing: ${missing[*]}" >&2
	exit 1
fi
if ((EUID != 0)); then
	echo "install-deps: missing ${missing[*]} and not root; run as root" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps docker-registry from pulling in extras.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${missing[*]}"
