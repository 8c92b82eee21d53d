#!/bin/bash
# Build steps of the container image, as a script: the Containerfile's
# builder stage runs it, and so does the test suite (without a container
# engine), so what the image gets is what the tests check.
#
#   build.sh deps                      apt-get install the build dependencies
#                                      (root; the builder stage)
#   build.sh build SRCDIR DESTDIR      build a release and install it under
#                                      DESTDIR (prefix /usr, config in /etc)
#   build.sh check-libs DESTDIR        list the shared libraries that
#                                      DESTDIR/usr/sbin/presence-reaper loads
#                                      (ldd) and the package of each (dpkg -S);
#                                      fail if one is missing or comes from a
#                                      package the runtime image does not get
#   build.sh packages build|runtime    print a package list, one a line
#
# Environment: BUILDDIR (build), default a temporary folder, removed after;
# RUNTIME_PACKAGES (check-libs), default runtime_packages below.
set -euo pipefail

# Debian 12 packages.  The runtime list must match the runtime stage's
# apt-get install line in the Containerfile (the tests compare them).
build_packages=(gcc libc6-dev pkg-config meson ninja-build python3
	libhiredis-dev libconfig-dev libsystemd-dev libmicrohttpd-dev libssl-dev)
# ca-certificates: the system trust store for rediss:// without tls.ca_file.
runtime_packages=(libhiredis0.14 libconfig9 libsystemd0 libmicrohttpd12 libssl3
	ca-certificates)

prog=${0##*/}

die() {
	echo "$prog: $*" >&2
	exit 1
}

usage() {
	sed -n '6,18s/^# \{0,1\}//p' "$0" >&2
	exit 64
}

do_deps() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${build_packages[@]}"
	rm -rf /var/lib/apt/lists/*
}

do_build() {
	local src dest builddir
	[ $# -eq 2 ] || usage
	src=$(realpath "$1")
	mkdir -p "$2"
	dest=$(realpath "$2")
	[ -f "$src/meson.build" ] || die "$src: no meson.build"

	if [ -n "${BUILDDIR:-}" ]; then
		builddir=$BUILDDIR
	else
		builddir=$(mktemp -d "${TMPDIR:-/tmp}/presence-reaper-build.XXXXXX")
		# shellcheck disable=SC2064 # expand now: the local is gone at exit
		trap "rm -rf '$builddir'" EXIT
	fi

	meson setup "$builddir" "$src" --prefix=/usr --buildtype=release -Dtests=false
	meson compile -C "$builddir"
	meson install -C "$builddir" --destdir "$dest" --strip

	# The image's CMD reads /etc/presence-reaper/presence-reaper.conf, the
	# folder Kubernetes mounts its ConfigMap on.  Ship the example config
	# there too, so the image also runs with no mount.
	[ -f "$dest/etc/presence-reaper.conf" ] ||
		die "meson install did not install etc/presence-reaper.conf"
	install -D -m 0644 "$dest/etc/presence-reaper.conf" \
		"$dest/etc/presence-reaper/presence-reaper.conf"
}

# Package that owns a file, or nothing.  Debian 12 merged /usr: ldd may
# report /lib/... for a file the package lists as /usr/lib/..., or the
# other way round, and symlinks may be listed under either name.
owner() {
	local f c real
	real=$(readlink -f "$1")
	for f in "$1" "$real"; do
		for c in "$f" "/usr$f" "${f#/usr}"; do
			dpkg -S "$c" 2>/dev/null | grep -v '^diversion' | head -n 1 |
				sed -n 's/^\([^:,]*\).*: .*/\1/p' | grep . && return 0
		done
	done
	return 1
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' ok installed$'
}

# The runtime packages and everything they depend on (Depends and
# Pre-Depends, recursively), as apt installs them in the runtime stage.
closure() {
	local -a todo=("$@")
	local seen=" " p d
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		case $seen in *" $p "*) continue ;; esac
		installed "$p" || continue # a virtual or absent alternative
		seen="$seen$p "
		for d in $(dpkg-query -W -f='${Pre-Depends},${Depends}' "$p" |
			tr ',|' '\n' | sed -e 's/([^)]*)//g' -e 's/:any//g' -e 's/[[:space:]]//g'); do
			todo+=("$d")
		done
	done
	echo "$seen"
}

do_check_libs() {
	local dest bin allowed p line lib pkg bad=0 n=0
	[ $# -eq 1 ] || usage
	dest=$1
	bin=$dest/usr/sbin/presence-reaper
	[ -x "$bin" ] || die "$bin: not found"
	local -a roots=("${runtime_packages[@]}")
	[ -z "${RUNTIME_PACKAGES:-}" ] || read -r -a roots <<<"$RUNTIME_PACKAGES"
	for p in "${roots[@]}"; do
		installed "$p" || die "runtime package $p is not installed here, cannot check against it"
	done
	allowed=$(closure "${roots[@]}")

	local out
	out=$(ldd "$bin") || die "ldd $bin failed"
	while read -r line; do
		case $line in
		*"not found"*)
			echo "MISSING  $line"
			bad=1
			continue
			;;
		linux-vdso.so.* | linux-gate.so.*) continue ;;
		*" => "*) lib=${line#* => } ;;
		*) lib=$line ;;
		esac
		lib=${lib%% (*}
		n=$((n + 1))
		if ! pkg=$(owner "$lib"); then
			echo "UNOWNED  $lib (no Debian package ships it)"
			bad=1
		elif [[ $allowed != *" $pkg "* ]]; then
			echo "NOT IN RUNTIME  $lib from $pkg"
			bad=1
		else
			echo "ok  $lib  $pkg"
		fi
	done <<<"$out"
	[ $n -gt 0 ] || die "ldd listed no libraries"
	if [ $bad -ne 0 ]; then
		echo "$prog: the binary needs libraries that the runtime packages" \
			"(${roots[*]}) do not bring; add their packages to the runtime" \
			"stage and to runtime_packages in $prog" >&2
		exit 1
	fi
	echo "$n libraries, all from the runtime packages (${roots[*]}) or their dependencies"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
deps) do_deps ;;
build) do_build "$@" ;;
check-libs) do_check_libs "$@" ;;
packages)
	case ${1:-} in
	build) printf '%s\n' "${build_packages[@]}" ;;
	runtime) printf '%s\n' "${runtime_packages[@]}" ;;
	*) usage ;;
	esac
	;;
*) usage ;;
esac
