#!/usr/bin/env bash
# Prints the path of an nginx binary built with the auth_request module, for
# the end-to-end tests (test/e2e). Only that path goes to stdout; messages
# go to stderr.
#
# Order:
#   1. the system's nginx (PATH, then /usr/sbin/nginx) if `nginx -V` shows
#      --with-http_auth_request_module;
#   2. the copy cached under bin/nginx/ by an earlier run;
#   3. Debian's package, fetched without installing it: `apt-get download`
#      (running `apt-get update` first if the package lists are missing or
#      stale), unpacked with `dpkg -x` into bin/nginx/root/. On Debian 12 the
#      binary is in the `nginx` package itself (nginx-common only holds
#      /etc/nginx and is not needed: the tests write their own config); older
#      releases shipped it in nginx-core / nginx-light, tried in turn.
#
# Concurrent runs (parallel `go test` packages) serialise on bin/nginx/.lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${ROOT}/bin/nginx"
CACHED="${DIR}/root/usr/sbin/nginx"

say() { echo "hack/nginx.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# has_auth_request BIN: BIN runs and was built with the auth_request module.
has_auth_request() {
	local out
	out="$("$1" -V 2>&1)" || return 1
	grep -q -- '--with-http_auth_request_module' <<<"${out}"
}

# missing_libs BIN: the shared libraries BIN needs that the loader cannot find.
missing_libs() {
	command -v ldd >/dev/null 2>&1 || return 0
	ldd "$1" 2>/dev/null | awk '/not found/ { print $1 }' | tr '\n' ' '
}

# 1. The system's nginx.
for sys in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
	[[ -n "${sys}" && -x "${sys}" ]] || continue
	if has_auth_request "${sys}"; then
		echo "${sys}"
		exit 0
	fi
	say "${sys} lacks the auth_request module; using Debian's package instead"
	break
done

# 2. The cached copy.
if [[ -x "${CACHED}" ]] && has_auth_request "${CACHED}"; then
	echo "${CACHED}"
	exit 0
fi

# 3. Debian's package.
command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||
	die "no nginx with auth_request found and no apt-get/dpkg to fetch Debian's; install nginx or set KEYWARD_NGINX"

mkdir -p "${DIR}"
if command -v flock >/dev/null 2>&1; then
	exec 9>"${DIR}/.lock"
	flock 9
	# Another run may have provided it while this one waited.
	if [[ -x "${CACHED}" ]] && has_auth_request "${CACHED}"; then
		echo "${CACHED}"
		exit 0
	fi
fi

WORK="$(mktemp -d "${DIR}/tmp.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

apt_opts=(-q)
# As root, apt drops privileges to _apt, which cannot write into WORK (0700)
# and says so in a warning; download as root directly instead.
[[ "$(id -u)" == 0 ]] && apt_opts+=(-o APT::Sandbox::User=root)

# download PKG: fetch PKG's .deb into WORK.
download() {
	(cd "${WORK}" && apt-get "${apt_opts[@]}" download "$1") >&2
}

updated=
# fetch PKG: download, running apt-get update once if the lists are missing or
# point at a version the mirror no longer has.
fetch() {
	download "$1" && return 0
	if [[ -z "${updated}" ]]; then
		updated=1
		say "apt-get download $1 failed; running apt-get update"
		apt-get "${apt_opts[@]}" update >&2 || say "apt-get update failed"
		download "$1" && return 0
	fi
	return 1
}

found=
for pkg in nginx nginx-core nginx-light; do
	if ! fetch "${pkg}"; then
		say "could not download ${pkg}"
		continue
	fi
	deb="$(ls "${WORK}/${pkg}"_*.deb 2>/dev/null | head -n1)"
	[[ -n "${deb}" ]] || continue
	rm -rf "${WORK}/root"
	dpkg -x "${deb}" "${WORK}/root"
	if [[ -x "${WORK}/root/usr/sbin/nginx" ]]; then
		found="${deb##*/}"
		break
	fi
	say "${pkg} holds no usr/sbin/nginx; trying the next package"
done
[[ -n "${found}" ]] || die "could not get an nginx binary from Debian's packages (nginx, nginx-core, nginx-light); install nginx or set KEYWARD_NGINX"

bin="${WORK}/root/usr/sbin/nginx"
if ! has_auth_request "${bin}"; then
	libs="$(missing_libs "${bin}")"
	[[ -z "${libs}" ]] || die "${found}: nginx cannot start, missing shared libraries: ${libs}(install them, e.g. libpcre2-8-0 libssl3 zlib1g)"
	die "${found}: nginx does not run or lacks the auth_request module"
fi

rm -rf "${DIR}/root"
mv "${WORK}/root" "${DIR}/root"
say "unpacked ${found} into ${DIR}/root ($("${CACHED}" -v 2>&1))"
echo "${CACHED}"
