#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager and
# etcd) from the Go module proxy into bin/k8s/kube-<version>-etcd-<version>/,
# the directory KUBEBUILDER_ASSETS points to. Nothing is downloaded as a
# prebuilt binary. A finished build is marked with a stamp file and reused
# until a version in hack/controlplane/go.mod or hack/etcd/go.mod changes; a
# binary missing from an older build (kube-controller-manager) is built alone.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kube_mod="$root/hack/controlplane"
etcd_mod="$root/hack/etcd"
# version MODULE GOMOD prints the version GOMOD requires of MODULE.
version() { awk -v m="$1" '{ for (i = 1; i < NF; i++) if ($i == m) { print $(i + 1); exit } }' "$2"; }
kube_version=$(version k8s.io/kubernetes "$kube_mod/go.mod")
etcd_version=$(version go.etcd.io/etcd/server/v3 "$etcd_mod/go.mod")
if [ -z "$kube_version" ] || [ -z "$etcd_version" ]; then
	echo "controlplane: cannot read the pinned versions from hack/controlplane/go.mod and hack/etcd/go.mod" >&2
	exit 1
fi
out="$root/bin/k8s/kube-${kube_version}-etcd-${etcd_version}"

if [ "${1:-}" = "--print-dir" ]; then
	echo "$out"
	exit 0
fi
# shellcheck source=hack/cache.sh
. "$root/hack/cache.sh"
complete() { [ -f "$out/.stamp" ] && [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/etcd" ]; }
if complete; then
	[ -f "$(keyward_cache_dir)/${out#"$root/bin/"}/.stamp" ] || cache_save "$root" "$out"
	exit 0
fi
if cache_restore "$root" "$out" && complete; then
	exit 0
fi

mkdir -p "$out"
start=$(date +%s)
echo "controlplane: building kube-apiserver and kube-controller-manager ${kube_version} and etcd ${etcd_version} into ${out#"$root"/} (first time only, about 8 minutes)" >&2
major=${kube_version#v}; major=${major%%.*}
minor=${kube_version#v*.}; minor=${minor%%.*}
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=${kube_version}"
ldflags+=" -X k8s.io/component-base/version.gitMajor=${major}"
ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor}"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
# build NAME COMMAND... runs COMMAND unless NAME is built already.
build() {
	local name=$1; shift
	if [ -x "$out/$name" ] && [ -f "$out/.stamp" ]; then
		return
	fi
	local t0; t0=$(date +%s)
	"$@"
	echo "controlplane: $name built in $(( $(date +%s) - t0 ))s" >&2
}
build kube-apiserver sh -c "cd '$kube_mod' && CGO_ENABLED=0 go build -trimpath -ldflags '$ldflags' -o '$out/kube-apiserver' k8s.io/kubernetes/cmd/kube-apiserver"
# Only its garbage collector, namespace and ClusterRole-aggregation
# controllers run (internal/controlplane).
build kube-controller-manager sh -c "cd '$kube_mod' && CGO_ENABLED=0 go build -trimpath -ldflags '$ldflags' -o '$out/kube-controller-manager' k8s.io/kubernetes/cmd/kube-controller-manager"
build etcd sh -c "cd '$etcd_mod' && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o '$out/etcd' go.etcd.io/etcd/server/v3"
# envtest looks for kubectl beside the control plane when a test asks for it.
if [ ! -e "$out/kubectl" ] && command -v kubectl >/dev/null 2>&1; then
	ln -s "$(command -v kubectl)" "$out/kubectl"
fi
"$out/kube-apiserver" --version >&2
"$out/kube-controller-manager" --version >&2
"$out/etcd" --version | head -1 >&2
touch "$out/.stamp"
cache_save "$root" "$out"
echo "controlplane: built in $(( $(date +%s) - start ))s" >&2
