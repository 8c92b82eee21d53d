#!/usr/bin/env bash
# Fuzz each harness of tests/fuzz for SECONDS (default 600) under ASan and
# UBSan, building build-fuzz first if needed, JOBS harnesses at a time
# (default: one per CPU). Then, per harness: the inputs executed, libFuzzer's
# coverage (cov:), its corpus (corp:) and the entries this run added, and
# what it found: crash-*, leak-*, timeout-* and oom-* files written this run
# under build-fuzz/tests/fuzz/artifacts/NAME/. The corpus it grows,
# build-fuzz/tests/fuzz/corpus/NAME, is the one the short test run starts
# from. Exits non-zero when any harness found something.
#   tests/fuzz/run.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-600}
jobs=${JOBS:-$(nproc)}
dir=build-fuzz
out=$dir/tests/fuzz

case $secs in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 64 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
fi
meson compile -C "$dir" >/dev/null || { echo "build failed: meson compile -C $dir"; exit 1; }

names=()
for exe in "$out"/fuzz_*; do
  [ -f "$exe" ] && [ -x "$exe" ] && names+=("${exe##*/fuzz_}")
done
[ ${#names[@]} -gt 0 ] || { echo "no harnesses in $out (-Dfuzz=true, CC=clang?)"; exit 1; }

# As the ASan step of tests/run-all.sh; libconfig's own leaks are not ours.
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0

mkdir -p "$out/logs"
stamp=$out/logs/.started
touch "$stamp"

run_one() {
  local name=$1 dict=()
  case $name in
    reapcall | probe | scan | watch | lastpass) dict=(-dict=tests/fuzz/resp.dict) ;;  # as meson.build
  esac
  mkdir -p "$out/corpus/$name" "$out/artifacts/$name"
  "$out/fuzz_$name" "${dict[@]}" -max_total_time="$secs" -rss_limit_mb=1024 -error_exitcode=1 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$name/" \
    "$out/corpus/$name" "tests/fuzz/corpus/$name" >"$out/logs/$name.log" 2>&1
  echo $? >"$out/logs/$name.rc"
}

echo "fuzzing ${names[*]}: ${secs} s each, $jobs at a time"
running=0
for name in "${names[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$name" &
  running=$((running + 1))
done
wait

# One figure from a log: libFuzzer's final stat, or the last value of a
# field of its status lines (cov: edges covered, corp: inputs kept).
final_stat() {
  sed -n "s/^stat::$2: *//p" "$1" | tail -1
}
last_field() {
  grep -o "$2: [0-9]*" "$1" | tail -1 | cut -d' ' -f2
}

found=0
printf '%-10s %12s %6s %7s %6s  %s\n' harness execs cov corpus new found
for name in "${names[@]}"; do
  log=$out/logs/$name.log
  rc=$(cat "$out/logs/$name.rc" 2>/dev/null || echo '?')
  arts=$(find "$out/artifacts/$name" -type f -newer "$stamp" \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  what=none
  if [ -n "$arts" ] || [ "$rc" != 0 ]; then
    found=1
    what="exit $rc; see $log"
  fi
  printf '%-10s %12s %6s %7s %6s  %s\n' "$name" "$(final_stat "$log" number_of_executed_units)" \
    "$(last_field "$log" cov)" "$(last_field "$log" corp)" \
    "+$(final_stat "$log" new_units_added)" "$what"
  for a in $arts; do
    echo "    $a"
  done
done
exit $found
