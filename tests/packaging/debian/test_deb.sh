#!/usr/bin/env bash
# Debian package test: build the package with packaging/debian/build-deb.sh,
# check it with lintian (any E: fails), install it with dpkg -i, check the
# program, the man pages and the conffile, then purge it again.
#
#   test_deb.sh SOURCE_ROOT MESON_PROJECT_VERSION
#
# It installs into the real system, so it needs root (or password-less sudo)
# and refuses to run when presence-reaper is already installed or its files
# exist: it removes only what it installed.  Exit 77 (skip) only when
# dpkg-buildpackage is absent.
set -uo pipefail

src=${1:?usage: test_deb.sh SOURCE_ROOT VERSION}
want_version=${2:?usage: test_deb.sh SOURCE_ROOT VERSION}
pkg=presence-reaper

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

command -v dpkg-buildpackage >/dev/null ||
  { echo "SKIP: dpkg-buildpackage not found (apt-get install dpkg-dev)"; exit 77; }
for tool in dh lintian dpkg-deb man; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found: run tests/setup.sh (debhelper, lintian, man-db)"
done

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null ||
    fail "installing the package needs root or password-less sudo"
  sudo=(sudo -n)
fi

# Refuse to touch an installation this test did not make.
status=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
case $status in
  ""|not-installed*) ;;
  *) fail "$pkg is already on this system ($status); this test installs and" \
          "purges it, so it will not run.  Remove it first: dpkg -P $pkg" ;;
esac
for f in /usr/sbin/presence-reaper /etc/presence-reaper.conf; do
  [ -e "$f" ] && fail "$f exists but belongs to no package (a 'meson install'?);" \
                      "this test would overwrite and then delete it.  Remove it first."
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-deb.XXXXXX")
installed=0
cleanup() {
  if [ "$installed" -eq 1 ]; then
    echo "== cleanup: dpkg -P $pkg"
    "${sudo[@]}" dpkg -P "$pkg" || echo "cleanup: dpkg -P $pkg failed" >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- build -----------------------------------------------------------------
step "build (packaging/debian/build-deb.sh)"
start=$(date +%s)
if ! DEB_BUILD_OPTIONS=nocheck bash "$src/packaging/debian/build-deb.sh" "$tmp/out" \
     >"$tmp/build.log" 2>&1; then
  tail -n 60 "$tmp/build.log"
  fail "the package did not build (last 60 lines of the build log above)"
fi
echo "built in $(( $(date +%s) - start )) s"

shopt -s nullglob
debs=("$tmp/out/${pkg}_"*.deb)
changes=("$tmp/out/${pkg}_"*.changes)
[ ${#debs[@]} -eq 1 ] || fail "expected one ${pkg}_*.deb, found: ${debs[*]:-none}"
[ ${#changes[@]} -eq 1 ] || fail "expected one ${pkg}_*.changes, found: ${changes[*]:-none}"
deb=${debs[0]}
ls -l "$tmp/out"

# --- lintian -----------------------------------------------------------------
# The .changes brings in every .deb it lists and the .buildinfo.
step "lintian --fail-on error --display-info ${changes[0]##*/}"
lintian --fail-on error --display-info "${changes[0]}" >"$tmp/lintian.log" 2>&1
lintian_rc=$?
cat "$tmp/lintian.log"
grep -q '^E: ' "$tmp/lintian.log" && fail "lintian reports errors (E: lines above)"
[ "$lintian_rc" -eq 0 ] || fail "lintian exited with status $lintian_rc"
echo "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.log") warnings)"

# --- package contents ------------------------------------------------------
step "package contents"
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$tmp/contents"
cat "$tmp/contents"
for f in /usr/sbin/presence-reaper /etc/presence-reaper.conf \
         /usr/share/man/man8/presence-reaper.8.gz \
         /usr/share/man/man5/presence-reaper.conf.5.gz \
         /usr/share/doc/presence-reaper/copyright; do
  grep -qx -- "$f" "$tmp/contents" || fail "$f is not in the package"
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/presence-reaper.conf ||
  fail "/etc/presence-reaper.conf is not a conffile in the package"

deb_version=$(dpkg-deb -f "$deb" Version)
[ "${deb_version%-*}" = "$want_version" ] ||
  fail "package version $deb_version does not match meson.build's $want_version" \
       "(update packaging/debian/changelog)"

if [ -e "$src/packaging/systemd/presence-reaper.service" ]; then
  grep -qx /lib/systemd/system/presence-reaper.service "$tmp/contents" ||
    fail "packaging/systemd/presence-reaper.service exists but the package has no" \
         "/lib/systemd/system/presence-reaper.service"
  dpkg-deb -I "$deb" postinst 2>/dev/null | grep -q 'deb-systemd-helper update-state' ||
    fail "the package's postinst does not register the unit (dh_installsystemd)"
  dpkg-deb -I "$deb" prerm 2>/dev/null | grep -q 'deb-systemd-invoke stop' ||
    fail "the package's prerm does not stop the service on removal"
  check_unit=1
  echo "systemd unit: /lib/systemd/system/presence-reaper.service (postinst registers it, prerm stops it)"
else
  echo "no packaging/systemd/presence-reaper.service in the source: unit not checked"
fi

check_unit=${check_unit:-0}

# --- install ---------------------------------------------------------------
step "dpkg -i ${deb##*/}"
installed=1   # from here on, cleanup purges (also after a half-done install)
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" </dev/null ||
  fail "dpkg -i failed"

step "/usr/sbin/presence-reaper --version"
out=$(/usr/sbin/presence-reaper --version 2>&1) ||
  fail "presence-reaper --version exited with status $?: $out"
echo "$out"
[ "$out" = "presence-reaper $want_version" ] ||
  fail "expected 'presence-reaper $want_version', got '$out'"

step "presence-reaper -t (the installed config file is valid)"
# An unreachable Redis is only reported by -t; use a socket that cannot exist
# so the check never touches a real server.
/usr/sbin/presence-reaper -t -c /etc/presence-reaper.conf \
    --redis-url "unix://$tmp/no-such.sock" >"$tmp/check.out" 2>&1 ||
  { cat "$tmp/check.out"; fail "presence-reaper -t rejects the installed /etc/presence-reaper.conf"; }

if [ "$check_unit" -eq 1 ]; then
  step "the service is installed disabled"
  # Enabling would start it at install time with the default redis.url
  # (packaging/debian/rules, override_dh_installsystemd).
  wants=/etc/systemd/system/multi-user.target.wants/presence-reaper.service
  [ -e "$wants" ] || [ -L "$wants" ] &&
    fail "$wants exists after dpkg -i: the package enabled the service"
  echo "not enabled (no $wants)"
fi

# Debian images may drop man pages at install time (dpkg path-exclude).
man_excluded() {
  grep -hsE '^[[:space:]]*path-exclude[[:space:]=]+/usr/share/man' \
    /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* | head -n 1
}
check_man() {
  local path
  step "man -w $*"
  if path=$(man -w "$@" 2>&1); then
    echo "$path"
    return 0
  fi
  local rule
  rule=$(man_excluded)
  [ -n "$rule" ] ||
    fail "man -w $* failed: $path"
  echo "man -w $* failed, but dpkg is configured with '$rule':" \
       "the man pages are in the package (checked above), dpkg did not install them"
}
check_man presence-reaper
check_man 5 presence-reaper.conf

step "conffiles"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' "$pkg")
echo "$conffiles"
grep -qE '^ /etc/presence-reaper\.conf [0-9a-f]{32}$' <<<"$conffiles" ||
  fail "dpkg does not list /etc/presence-reaper.conf as a conffile"
[ -f /etc/presence-reaper.conf ] || fail "/etc/presence-reaper.conf was not installed"

# --- purge -----------------------------------------------------------------
step "dpkg -P $pkg"
installed=0
"${sudo[@]}" dpkg -P "$pkg" </dev/null || fail "dpkg -P $pkg failed"
for f in /usr/sbin/presence-reaper /etc/presence-reaper.conf; do
  [ -e "$f" ] && fail "$f is still there after dpkg -P"
done

echo "PASS: $pkg $deb_version builds, is lintian-clean (no errors), installs, runs and purges"
