#!/bin/bash
# presence-reaper in one minute: build it, make stale presence the way a
# crashed realtime server does, and watch the reaper clean it up.
#
#   bash tests/demo.sh        (from the repository root)
#
# Starts a throwaway redis-server on a Unix socket in a temporary directory;
# nothing outside that directory and build/ is touched.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/build/reaper/presence-reaper
RT=$ROOT/packaging/realtime

heading() { printf '\n== %s ==\n' "$*"; }

heading "Setup"
if [ -f tests/setup.sh ]; then
    bash tests/setup.sh
else
    echo "tests/setup.sh not found; assuming build dependencies are installed"
fi

heading "Build"
mkdir -p build
if [ ! -f build/build.ninja ]; then
    meson setup build >build/demo-setup.log 2>&1 || { cat build/demo-setup.log; exit 1; }
fi
meson compile -C build >build/demo-compile.log 2>&1 || { cat build/demo-compile.log; exit 1; }
echo "built $BIN"
"$BIN" --version

heading "Start a throwaway redis-server"
TMP=$(mktemp -d /tmp/presence-demo.XXXXXX)
SOCK=$TMP/redis.sock
REDIS_PID=
cleanup() {
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 \
    --save "" --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" &
REDIS_PID=$!

rcli() { redis-cli -s "$SOCK" "$@"; }

# Wait (up to 10 s) until it answers PING.
for _ in $(seq 100); do
    if [ "$(rcli ping 2>/dev/null)" = PONG ]; then break; fi
    sleep 0.1
done
[ "$(rcli ping 2>/dev/null)" = PONG ] || { echo "redis-server did not start"; cat "$TMP/redis.log"; exit 1; }
echo "redis-server pid $REDIS_PID on $SOCK"

ONLINE=presence:online-users
key() { printf 'presence:user:%s:sockets' "$1"; }

CONNECT=$(rcli script load "$(cat "$RT/connect.lua")")

heading "Realtime servers connect users (socket sets with a 60 s TTL)"
LIVE=()
for i in $(seq 1 20); do LIVE+=("$(printf 'alice-%02d' "$i")"); done
STALE=()
for i in $(seq 1 8); do STALE+=("$(printf 'bob-%02d' "$i")"); done
for u in "${LIVE[@]}"; do
    rcli evalsha "$CONNECT" 2 "$ONLINE" "$(key "$u")" "$u" "server-a:$u" 60 >/dev/null
done
for u in "${STALE[@]}"; do
    rcli evalsha "$CONNECT" 2 "$ONLINE" "$(key "$u")" "$u" "server-b:$u" 60 >/dev/null
done
echo "server A: ${#LIVE[@]} users (alice-01..20), server B: ${#STALE[@]} users (bob-01..08)"
echo "online set size: $(rcli scard "$ONLINE")"

heading "Server B crashes (kill -9): no disconnect handler runs"
# Its users' socket sets stop being heartbeated and expire; here after 1 s.
for u in "${STALE[@]}"; do rcli pexpire "$(key "$u")" 1000 >/dev/null; done
gone=0
for _ in $(seq 50); do
    n=0
    for u in "${STALE[@]}"; do n=$((n + $(rcli exists "$(key "$u")"))); done
    if [ "$n" -eq 0 ]; then gone=1; break; fi
    sleep 0.1
done
[ "$gone" -eq 1 ] || { echo "socket sets did not expire within 5 s"; exit 1; }
echo "server B's socket sets have expired"
echo "online set size: $(rcli scard "$ONLINE")   <- the 8 users of server B are stale: shown online for ever"

CONF=$TMP/presence-reaper.conf
cat > "$CONF" <<EOF
redis = { url = "unix://$SOCK"; };
EOF

# Run the reaper, showing its stdout and its log (stderr) apart.
reaper() {
    local rc=0
    "$BIN" -c "$CONF" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    echo "stdout:"; sed 's/^/    /' "$TMP/out"
    echo "stderr:"; sed 's/^/    /' "$TMP/err"
    echo "exit status: $rc"
    return "$rc"
}

problems=()

heading "presence-reaper --dry-run --once (reports the stale users, changes nothing)"
reaper --dry-run --once || problems+=("presence-reaper --dry-run --once failed")
echo "online set size: $(rcli scard "$ONLINE")"
[ "$(sort "$TMP/out")" = "$(printf '%s\n' "${STALE[@]}" | sort)" ] ||
    problems+=("the dry run did not report exactly server B's 8 users")
[ "$(rcli scard "$ONLINE")" = 28 ] || problems+=("the dry run changed the online set")

heading "presence-reaper --once"
reaper --once || problems+=("presence-reaper --once failed")

# The --once run released the lock: no leader now, so CRITICAL (exit 2) is right.
heading "presence-reaper --status (the operator's view; a Nagios check)"
rc=0
reaper --status >/dev/null || rc=$?
sed 's/^/    /' "$TMP/out"
echo "exit status: $rc (2: CRITICAL, no replica holds the lock now that --once has released it)"
grep -q "^last pass: ok, .*removed 8," "$TMP/out" ||
    problems+=("--status did not show the pass that removed 8")

heading "Result"
echo "online set size: $(rcli scard "$ONLINE")"
got=$(rcli smembers "$ONLINE" | sort)
want=$(printf '%s\n' "${LIVE[@]}" | sort)
if [ "$got" != "$want" ]; then
    problems+=("the online set is not the ${#LIVE[@]} live users of server A")
    diff <(echo "$want") <(echo "$got") || true
fi
if [ ${#problems[@]} -eq 0 ]; then
    echo "PASS: the online set holds exactly the ${#LIVE[@]} live users of server A"
else
    printf 'FAIL: %s\n' "${problems[@]}"
    exit 1
fi
