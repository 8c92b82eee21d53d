#!/usr/bin/env bash
# Build presence-reaper and the benchmark programs in a build folder of their
# own, then run the benchmark. Options go to tests/bench/bench.py, but for
# --churn USERS, which runs tests/bench/churn.py at that size afterwards:
#
#   bash tests/bench/run.sh [--large] [--repeat N] [--sizes 10000,100000,1000000]
#                           [--batch-curve] [--idle] [--all] [--reaper PATH] [--no-pin]
#                           [--churn USERS]
#
# Markdown on stdout, progress and build output on stderr. BENCH_BUILD_DIR
# picks the build folder (default: presence-reaper-bench in $TMPDIR or /tmp).
# Then gnuplot draws the figures (tests/bench/plots.py) into BENCH_FIGURES
# (default: figures in the build folder), beside the Markdown (bench.md):
# pass-time.png and batch-size.png; with --churn, crash-offline.png.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BENCH_BUILD_DIR:-${TMPDIR:-/tmp}/presence-reaper-bench}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" >&2
fi
meson compile -C "$build" >&2
py=$(cat "$build/tests/bench/python-path")
args=() churn=""
while [ $# -gt 0 ]; do
  case $1 in
    --churn) [ $# -ge 2 ] || { echo "run.sh: --churn needs a user count" >&2; exit 64; }
             churn=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
# The Markdown on stdout, and kept for the figures gnuplot draws from it.
figures=${BENCH_FIGURES:-$build/figures}
mkdir -p "$figures"
set -o pipefail
"$py" "$src/tests/bench/bench.py" --build "$build" "${args[@]}" | tee "$figures/bench.md"
"$py" "$src/tests/bench/plots.py" bench "$figures/bench.md" "$figures" >&2
if [ -n "$churn" ]; then
  echo
  "$py" "$src/tests/bench/churn.py" --build "$build" -n "$churn" --plots "$figures"
fi
