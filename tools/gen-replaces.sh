#!/usr/bin/env bash
# Regenerates the replace block of tools/go.mod from the go.mod of the
# pinned k8s.io/kubernetes release: every staging module (k8s.io/api, ...)
# is replaced by its published v0.<minor>.<patch> tag. Run it after changing
# KUBE_VERSION, then `go mod tidy` inside tools/.
set -euo pipefail
cd "$(dirname "$0")"
kube_version=${KUBE_VERSION:-$(grep -oE "k8s.io/kubernetes v[0-9.]+" go.mod | head -1 | cut -d" " -f2)}
staging_version="v0.${kube_version#v1.}"
modfile=$(go mod download -json "k8s.io/kubernetes@${kube_version}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
mods=$(awk '/=> \.\/staging\/src\// { print $1 }' "$modfile")
args=()
for m in $mods; do
	args+=("-replace=${m}=${m}@${staging_version}")
done
go mod edit "${args[@]}"
echo "replaced $(wc -w <<<"$mods") staging modules with ${staging_version}"
