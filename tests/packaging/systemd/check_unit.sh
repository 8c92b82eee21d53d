#!/usr/bin/env bash
# Check packaging/systemd/presence-reaper.service with systemd's own tools:
#   systemd-analyze verify   syntax, directives, executables, man pages
#   systemd-analyze security the hardening exposure stays at or below 2.0
# Usage: check_unit.sh UNIT BINARY MANDIR
# verify needs ExecStart= to exist, so it checks a copy whose ExecStart
# points at the freshly built binary; everything else is the file as shipped.
set -uo pipefail

unit=$1 binary=$2 mandir=$3
name=presence-reaper.service
threshold=20 # systemd-analyze's scale: 20 = exposure 2.0 of 10

if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze not installed (apt-get install systemd)"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# man: verify runs man(1) for every Documentation=man: link; serve ours.
mkdir -p "$tmp/man/man5" "$tmp/man/man8"
cp "$mandir/presence-reaper.8" "$tmp/man/man8/"
cp "$mandir/presence-reaper.conf.5" "$tmp/man/man5/"

grep -q '^ExecStart=/usr/sbin/presence-reaper ' "$unit" ||
	{ echo "FAIL: $unit: ExecStart= is not /usr/sbin/presence-reaper"; exit 1; }
sed "s#^ExecStart=/usr/sbin/presence-reaper #ExecStart=$binary #" "$unit" >"$tmp/$name"

man=()
if ! command -v man >/dev/null; then
	echo "note: man(1) not installed, Documentation= links not checked (apt-get install man-db)"
	man=(--man=no)
fi

fail=0
out=$(MANPATH="$tmp/man" SYSTEMD_COLORS=0 \
	systemd-analyze verify --recursive-errors=yes "${man[@]}" "$tmp/$name" 2>&1)
rc=$?
echo "== systemd-analyze verify --recursive-errors=yes (exit $rc)"
# Name the shipped file, not the copy (line numbers are the same).
[ -n "$out" ] && printf '%s\n' "$out" | sed "s#$tmp/$name#$unit#g"
ours=$(printf '%s\n' "$out" | grep -F -e "$name" -e "$tmp/" || true)
if [ -n "$ours" ]; then
	echo "FAIL: systemd-analyze verify reports problems in $name"
	fail=1
elif [ "$rc" -ne 0 ] && [ -z "$out" ]; then
	echo "FAIL: systemd-analyze verify exited $rc without saying why"
	fail=1
elif [ "$rc" -ne 0 ]; then
	# --recursive-errors=yes also fails on the host's own units (e.g. a
	# broken target in a container); those are not ours to fix.
	echo "note: the problems above are in other units, not in $name"
fi

out=$(SYSTEMD_COLORS=0 systemd-analyze security --offline=yes \
	--threshold=$threshold --no-pager "$tmp/$name" 2>&1)
rc=$?
echo "== systemd-analyze security --offline=yes --threshold=$threshold (exit $rc)"
# What is still exposed, and the score.
printf '%s\n' "$out" | grep -v '^✓' | sed "s#$tmp/$name#$unit#g"
if [ "$rc" -ne 0 ]; then
	echo "FAIL: exposure above $((threshold / 10)).$((threshold % 10))"
	fail=1
fi

[ "$fail" -eq 0 ] && echo "OK: $name verifies cleanly and is hardened"
exit "$fail"
