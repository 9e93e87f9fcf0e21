#!/usr/bin/env bash
# Builds gitleaks from the Go module proxy into bin/gitleaks/gitleaks-<version>,
# for the test of the secret-scanning rule (cmd/kubectl-keyward,
# docs/secret-scanning/gitleaks.toml). Nothing is downloaded as a prebuilt
# binary. A finished build is reused. Prints the binary's path (only that goes
# to stdout; messages go to stderr); `--print` prints it without building.
#
# gitleaks' go.mod has no replace or exclude directives, so a plain
# `go install module@version` builds it, with the version stamped in as the
# project's own release build does.
#
# A build is also kept outside the clone, in $KEYWARD_CACHE_DIR
# (hack/cache.sh), so that a fresh clone on the same machine reuses it.
#
# Concurrent runs (parallel `go test` packages) serialise on bin/gitleaks/.lock.
set -euo pipefail

VERSION=v8.30.1
MODULE=github.com/zricethezav/gitleaks/v8

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/bin/gitleaks"
out="$dir/gitleaks-${VERSION}"

say() { echo "gitleaks: $*" >&2; }
die() { say "error: $*"; exit 1; }

if [ "${1:-}" = "--print" ]; then
	echo "$out"
	exit 0
fi
# shellcheck source=hack/cache.sh
. "$root/hack/cache.sh"
if binary_ready "$root" "$out" version; then
	echo "$out"
	exit 0
fi

start=$(date +%s)
say "building gitleaks ${VERSION} into ${out#"$root"/} (first time only, a few minutes on 2 cores)"

# Outside this module: gitleaks' own go.mod and go.sum decide its dependencies.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

# Refuse, rather than silently mis-build, a release whose go.mod needs
# directives that only apply in the main module.
gomod=$(go mod download -json "${MODULE}@${VERSION}" |
	sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[ -f "$gomod" ] || die "go mod download ${MODULE}@${VERSION} gave no go.mod"
if grep -Eq '^[[:space:]]*(replace|exclude)([[:space:]]|\()' "$gomod"; then
	die "${MODULE}@${VERSION}'s go.mod has replace or exclude directives; go install cannot build it (see hack/traefik.sh for a wrapper module)"
fi

work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(
	cd "$work"
	GOBIN="$work" nice -n 19 go install -trimpath \
		-ldflags "-s -w -X ${MODULE}/version.Version=${VERSION}" "${MODULE}@${VERSION}" >&2
)
[ -x "$work/gitleaks" ] || die "go install gave no gitleaks binary"
"$work/gitleaks" version >&2
mv "$work/gitleaks" "$out"
binary_save "$root" "$out"
say "built in $(($(date +%s) - start))s"
echo "$out"
