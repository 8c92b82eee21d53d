#!/usr/bin/env bash
# Build presence-reaper and the benchmark programs in a build folder of their
# own, then run the benchmark. Options go to tests/bench/bench.py:
#
#   bash tests/bench/run.sh [--large] [--repeat N] [--sizes 10000,100000,1000000]
#                           [--batch-curve] [--idle] [--all] [--reaper PATH] [--no-pin]
#
# Markdown on stdout, progress and build output on stderr. BENCH_BUILD_DIR
# picks the build folder (default: presence-reaper-bench in $TMPDIR or /tmp).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BENCH_BUILD_DIR:-${TMPDIR:-/tmp}/presence-reaper-bench}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" >&2
fi
meson compile -C "$build" >&2
exec "$(cat "$build/tests/bench/python-path")" "$src/tests/bench/bench.py" --build "$build" "$@"
