#!/usr/bin/env bash
# Set up, build (normal and ASan+UBSan) and run every test suite, and the
# unit suites once more under valgrind; then the fuzz harnesses briefly.
# Ends with "N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

bash tests/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

# Count meson's per-test results from a build's JSON test log (testlog.json,
# or testlog-SETUP.json for a run with --setup=SETUP).
count() {
  local log=$1/meson-logs/${2:-testlog.json} p f
  [ -f "$log" ] || { failed=$((failed + 1)); return; }
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  passed=$((passed + p))
  failed=$((failed + f))
}

# Build dir with the meson setup arguments given, then run its tests: all of
# them, or only the suite named in $suite.
build_and_test() {
  local dir=$1; shift
  echo "== $dir: $*"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 ||
      { cat "$dir.setup.log"; failed=$((failed + 1)); return; }
  fi
  if ! meson compile -C "$dir"; then
    failed=$((failed + 1))
    return
  fi
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --num-processes 2 ${suite:+--suite "$suite"}
  count "$dir"
}

build_and_test build
# The unit suites under valgrind (memcheck): an error or a leak fails the test.
echo "== build: valgrind, unit suites"
rm -f build/meson-logs/testlog-valgrind.json
meson test -C build --setup=valgrind --suite unit --print-errorlogs --num-processes 2
count build testlog-valgrind.json
# Same tests again with AddressSanitizer and UndefinedBehaviorSanitizer;
# any report aborts the process, which fails the test.
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build_and_test build-asan -Db_sanitize=address,undefined -Db_lundef=false
# The libFuzzer harnesses (tests/fuzz), 20 s each, in a clang build of their
# own with both sanitizers; a crash, leak or undefined behaviour fails one.
# tests/fuzz/run.sh runs them for longer.
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
CC=clang suite=fuzz \
  build_and_test build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
