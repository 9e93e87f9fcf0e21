# Sourced by the hack/ scripts that build tools into bin/: a build is also
# kept outside the clone, in $KEYWARD_CACHE_DIR (default
# ${XDG_CACHE_HOME:-~/.cache}/keyward), so that a fresh clone on the same
# machine (CI's) reuses it instead of building again. A build is complete
# when its directory holds a .stamp file; only complete builds are saved
# and restored, each under its path relative to bin/.

keyward_cache_dir() {
	echo "${KEYWARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keyward}"
}

# cache_restore ROOT DIR: copies the cached build of DIR (a directory under
# ROOT/bin) into DIR when the cache has a complete one. Fails otherwise.
cache_restore() {
	local rel=${2#"$1/bin/"} cached
	cached="$(keyward_cache_dir)/$rel"
	[ -f "$cached/.stamp" ] || return 1
	mkdir -p "$2"
	cp -a "$cached/." "$2/"
	echo "$(basename "$0"): reused $rel from $(keyward_cache_dir)" >&2
}

# cache_save ROOT DIR: keeps a copy of the complete build DIR in the cache,
# replacing the cached one whole. A cache that cannot be written is not an
# error: the build under bin/ stands.
cache_save() {
	local rel=${2#"$1/bin/"} cached tmp
	[ -f "$2/.stamp" ] || return 0
	cached="$(keyward_cache_dir)/$rel"
	tmp="$cached.tmp.$$"
	{ mkdir -p "$(dirname "$cached")" && rm -rf "$tmp" && cp -a "$2" "$tmp" && rm -rf "$cached" && mv "$tmp" "$cached"; } 2>/dev/null || {
		rm -rf "$tmp" 2>/dev/null
		echo "$(basename "$0"): could not keep a copy in $(keyward_cache_dir) (not an error)" >&2
	}
	return 0
}

# The scripts that build one binary from the Go module proxy (hack/helm.sh,
# hack/traefik.sh, hack/gitleaks.sh) share these two:
#
#	if binary_ready "$root" "$out" version; then exit 0; fi
#	... build into $out ...
#	binary_save "$root" "$out"

# binary_ready ROOT OUT [ARGS...]: succeeds when the binary OUT (a file under
# ROOT/bin) is there, or is restored from the cache and runs with ARGS (a
# check that the copy works). Otherwise it fails holding the lock of OUT's
# directory (on fd 9, until the script exits), so that concurrent runs
# (parallel `go test` packages) build once; the caller builds OUT.
binary_ready() {
	local root=$1 out=$2 cached
	shift 2
	cached="$(keyward_cache_dir)/${out#"$root/bin/"}"
	if [ -x "$out" ]; then
		binary_save "$root" "$out"
		return 0
	fi
	mkdir -p "$(dirname "$out")"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$(dirname "$out")/.lock"
		flock 9
		# Another run may have built it while this one waited.
		[ -x "$out" ] && return 0
	fi
	if [ -x "$cached" ] && cp "$cached" "$out.tmp.$$" && mv "$out.tmp.$$" "$out" &&
		{ [ $# -eq 0 ] || "$out" "$@" >/dev/null 2>&1; }; then
		echo "$(basename "$0"): reused ${out#"$root/bin/"} from $(keyward_cache_dir)" >&2
		return 0
	fi
	rm -f "$out" "$out.tmp.$$"
	return 1
}

# binary_save ROOT OUT: keeps a copy of the binary OUT in the cache unless it
# has one. A cache that cannot be written is not an error.
binary_save() {
	local cached
	cached="$(keyward_cache_dir)/${2#"$1/bin/"}"
	[ -x "$cached" ] && return 0
	{ mkdir -p "$(dirname "$cached")" && cp "$2" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"; } 2>/dev/null || {
		rm -f "$cached.tmp.$$" 2>/dev/null
		echo "$(basename "$0"): could not keep a copy in $(keyward_cache_dir) (not an error)" >&2
	}
	return 0
}
