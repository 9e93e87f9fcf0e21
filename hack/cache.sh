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
