#!/usr/bin/env bash
# Builds Helm from the Go module proxy into bin/helm/helm-<version>, for the
# chart's tests (charts/keyward) and for installing the chart by hand.
# Nothing is downloaded as a prebuilt binary. A finished build is reused;
# `--print` prints the binary's path (only that goes to stdout) without
# building.
#
# helm.sh/helm/v4 has no replace or exclude directives, so `go install
# ...@version` builds it as released, in module mode, outside keyward's
# go.mod. The version is set as Helm's own Makefile sets it, so `helm
# version` names it.
#
# A build is also kept outside the clone, in $KEYWARD_CACHE_DIR
# (hack/cache.sh), so that a fresh clone on the same machine reuses it.
#
# Concurrent runs (parallel `go test` packages) serialise on bin/helm/.lock.
set -euo pipefail

VERSION=v4.3.2
MODULE=helm.sh/helm/v4

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/bin/helm"
out="$dir/helm-${VERSION}"

say() { echo "helm: $*" >&2; }

if [ "${1:-}" = "--print" ]; then
	echo "$out"
	exit 0
fi
# shellcheck source=hack/cache.sh
. "$root/hack/cache.sh"
if binary_ready "$root" "$out" version; then
	exit 0
fi

start=$(date +%s)
say "building Helm ${VERSION} into ${out#"$root"/} (first time only: 3 minutes of CPU, 8 on 2 busy shared cores)"

work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

ldflags="-s -w"
ldflags+=" -X ${MODULE}/internal/version.version=${VERSION}"
ldflags+=" -X ${MODULE}/internal/version.gitTreeState=clean"
(
	cd "$work"
	GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$work" \
		nice -n 19 go install -trimpath -ldflags "$ldflags" "${MODULE}/cmd/helm@${VERSION}"
)
"$work/helm" version >&2
mv "$work/helm" "$out"
binary_save "$root" "$out"
say "built in $(($(date +%s) - start))s"
