#!/usr/bin/env bash
# Regenerates CRDs, RBAC, webhook configurations and deepcopy code in a scratch copy of the tree and
# fails, naming each file, when the result differs from the files here. It
# never touches the working tree, so it is safe with uncommitted work.
#
# Usage: hack/verify-generated.sh <controller-gen>
set -euo pipefail

gen=${1:?usage: hack/verify-generated.sh <controller-gen>}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cd "$root"
git ls-files -co --exclude-standard -z | grep -zv '^bin/' | xargs -0 cp --parents -t "$scratch" 2>/dev/null || true
cd "$scratch"
rm -f api/v1alpha1/zz_generated.deepcopy.go
rm -rf config/crd/bases config/rbac/role.yaml config/webhook/manifests.yaml
"$gen" object:headerFile="hack/boilerplate.go.txt" paths="./api/..."
"$gen" crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
"$gen" rbac:roleName=keyward-manager paths="{./controllers/...,./webhook/...}" output:rbac:artifacts:config=config/rbac
"$gen" webhook paths="./webhook/..." output:webhook:artifacts:config=config/webhook
go run ./hack/webhookconditions config/webhook/manifests.yaml

status=0
for f in api/v1alpha1/zz_generated.deepcopy.go config/rbac/role.yaml config/webhook/manifests.yaml config/crd/bases/*.yaml; do
	if [ ! -f "$root/$f" ]; then
		echo "verify: $f is generated but missing from the tree; run 'make generate manifests'" >&2
		status=1
	elif ! diff -u "$root/$f" "$f" >"$scratch/.diff" 2>&1; then
		echo "verify: $f is stale; run 'make generate manifests' and commit the result" >&2
		head -40 "$scratch/.diff" >&2
		status=1
	fi
done
for f in "$root"/config/crd/bases/*.yaml; do
	[ -e "$f" ] || continue
	rel=${f#"$root"/}
	if [ ! -f "$rel" ]; then
		echo "verify: $rel is no longer generated; delete it" >&2
		status=1
	fi
done
unformatted=$(cd "$root" && git ls-files -co --exclude-standard '*.go' | grep -v '^bin/' | xargs gofmt -s -l)
if [ -n "$unformatted" ]; then
	echo "verify: not gofmt'd (run 'make fmt'): $unformatted" >&2
	status=1
fi
[ $status -eq 0 ] && echo "verify: generated files are up to date" >&2
exit $status
