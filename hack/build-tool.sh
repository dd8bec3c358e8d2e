#!/usr/bin/env bash
# Builds one third-party program of the tools module (tools/go.mod) into BIN,
# unless BIN already holds it at the same version and build settings.
#
#   hack/build-tool.sh NAME PACKAGE VERSION [go build flags...]
#
# A stamp file BIN/.stamps/NAME records "VERSION <hash of the flags>"; the
# binary is rebuilt only when it is missing or the stamp differs. Prints one
# line per tool: "cached" or "built ... in N s".
set -euo pipefail

name=$1 pkg=$2 version=$3
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/bin}
go=${GO:-go}
stamps=$bin/.stamps
want="$version $(printf '%s\n' "$pkg" "$@" "$($go env GOVERSION)" | sha256sum | cut -c1-16)"

if [[ -x $bin/$name && -f $stamps/$name && $(<"$stamps/$name") == "$want" ]]; then
	printf 'tools: %-28s cached (%s)\n' "$name" "$version"
	exit 0
fi

mkdir -p "$bin" "$stamps"
printf 'tools: %-28s building %s ...\n' "$name" "$version"
start=$(date +%s)
# Build to a temporary name and move it into place, so an interrupted build
# never leaves a truncated binary that looks current.
tmp=$bin/.$name.tmp
rm -f "$tmp" "$stamps/$name"
(cd "$root/${TOOLS_MODULE_DIR:-tools}" && CGO_ENABLED=${CGO_ENABLED:-0} $go build -trimpath -o "$tmp" "$@" "$pkg")
mv -f "$tmp" "$bin/$name"
printf '%s\n' "$want" >"$stamps/$name"
printf 'tools: %-28s built %s in %d s\n' "$name" "$version" "$(($(date +%s) - start))"
