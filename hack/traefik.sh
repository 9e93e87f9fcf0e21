#!/usr/bin/env bash
# Builds Traefik from the Go module proxy into bin/traefik/traefik-<version>,
# for the end-to-end tests (test/e2e) and the benchmarks (test/bench). Nothing
# is downloaded as a prebuilt binary. A finished build is reused; `--print`
# prints the binary's path (only that goes to stdout) without building.
#
# Traefik's go.mod carries replace and exclude directives, which Go applies
# only in the main module, so `go install ...@version` refuses it. The build
# therefore runs in a small wrapper module, written under bin/traefik/, that
# requires github.com/traefik/traefik/v3 and repeats those directives as read
# from Traefik's own go.mod in the module cache.
#
# v3.6.12 is the newest release that builds so: v3.7.12 and later also need
# github.com/traefik/traefik/dynamic/ext, which the proxy does not serve.
#
# A build is also kept outside the clone, in $KEYWARD_CACHE_DIR
# (hack/cache.sh), so that a fresh clone on the same machine reuses it.
#
# Concurrent runs (parallel `go test` packages) serialise on bin/traefik/.lock.
set -euo pipefail

VERSION=v3.6.12
MODULE=github.com/traefik/traefik/v3

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/bin/traefik"
out="$dir/traefik-${VERSION}"

say() { echo "traefik: $*" >&2; }
die() { say "error: $*"; exit 1; }

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
say "building Traefik ${VERSION} into ${out#"$root"/} (first time only: 11 minutes of CPU, 17 on 2 shared cores)"

export GOWORK=off CGO_ENABLED=0

# Traefik's go.mod, from the module cache (downloaded through the proxy).
gomod=$(go mod download -json "${MODULE}@${VERSION}" |
	sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[ -f "$gomod" ] || die "go mod download ${MODULE}@${VERSION} gave no go.mod"
goversion=$(awk '$1 == "go" { print $2; exit }' "$gomod")

# directives prints the replace and exclude directives of a go.mod, both the
# one-line and the block forms, comments dropped.
directives() {
	awk '
		/^(replace|exclude)[[:space:]]*\(/ { block = 1; print; next }
		block { print; if ($0 ~ /^[[:space:]]*\)/) block = 0; next }
		/^(replace|exclude)[[:space:]]/ { print }
	' "$1" | sed 's|[[:space:]]*//.*$||'
}
# A replacement by a local directory cannot be repeated outside Traefik's tree.
if directives "$gomod" | grep -Eq '=>[[:space:]]*(\.|/)'; then
	die "${MODULE}@${VERSION} replaces a module by a local directory; it cannot be built from the proxy"
fi

work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
{
	echo "// Wrapper module written by hack/traefik.sh to build Traefik ${VERSION}."
	echo "module keyward.local/hack/traefik"
	echo
	echo "go ${goversion}"
	echo
	echo "require ${MODULE} ${VERSION}"
	echo
	directives "$gomod"
} >"$work/go.mod"

ldflags="-s -w"
ldflags+=" -X ${MODULE}/pkg/version.Version=${VERSION}"
ldflags+=" -X ${MODULE}/pkg/version.Codename=keyward-e2e"
ldflags+=" -X ${MODULE}/pkg/version.BuildDate=1970-01-01T00:00:00Z"
(
	cd "$work"
	# Resolves the requirements of the command's packages and writes go.sum.
	go get "${MODULE}/cmd/traefik@${VERSION}" >&2
	nice -n 19 go build -mod=mod -buildvcs=false -trimpath -ldflags "$ldflags" -o "$work/traefik" "${MODULE}/cmd/traefik"
)
"$work/traefik" version >&2
mv "$work/traefik" "$out"
binary_save "$root" "$out"
say "built in $(($(date +%s) - start))s"
