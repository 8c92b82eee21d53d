#!/usr/bin/env bash
# Soak: presence churn plus a fault every minute (tests/bench/soak.py), for
# MINUTES (default 10). Builds presence-reaper in a folder of its own first.
#
#   bash tests/bench/soak.sh [MINUTES]
#
# A Markdown table on stdout, a line a minute: the fault, whether the
# invariant held, each replica's RSS and open fds, Redis's client count;
# then the first and last figures. Exit status 1 when an invariant failed.
# SOAK_BUILD_DIR picks the build folder (default: presence-reaper-soak in
# $TMPDIR or /tmp).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${SOAK_BUILD_DIR:-${TMPDIR:-/tmp}/presence-reaper-soak}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" >&2
fi
meson compile -C "$build" >&2
exec "$(cat "$build/tests/bench/python-path")" "$src/tests/bench/soak.py" --build "$build" \
  --minutes "${1:-10}"
