#!/usr/bin/env bash
# Install what building and testing presence-reaper needs, on Debian 12.
# Only missing packages are installed; running it twice does nothing.
set -euo pipefail

packages=(
  gcc pkg-config meson ninja-build     # build
  libhiredis-dev libconfig-dev         # the program's libraries
  check valgrind                       # unit tests, and them under memcheck
  clang libclang-rt-14-dev             # fuzz harnesses (libFuzzer ships in clang's runtime)
  redis-server redis-tools             # integration tests and the demo
  python3 python3-redis python3-pytest # integration test driver
  python3-prometheus-client            # strict parse of the metrics text
  mandoc                               # man page lint
  libsystemd-dev systemd               # sd_notify; systemd-analyze checks the unit
  libmicrohttpd-dev                    # metrics and health endpoint
  libssl-dev openssl                   # TLS to Redis; test certificates
  python3-yaml                         # Kubernetes manifest checks
  prometheus                           # promtool tests the alert rules; a real Prometheus scrapes real reapers
  gnuplot-nox                          # the benchmarks' figures
  nodejs node-typescript               # the realtime servers' kit and shard function, compiled and run
  build-essential debhelper dpkg-dev fakeroot lintian man-db  # Debian package test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
# npm installs the realtime kit's clients; Debian's nodejs comes without it
# (a nodejs that has its own, from elsewhere, conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The redis-server and prometheus packages start system instances where
  # they can; the tests never use them (each starts its own).
fi

# The realtime kit's node-redis and ioredis (its tests drive both), as its
# lock file pins them; again only when the lock file changed.
kit=$(cd "$(dirname "$0")/../packaging/realtime" && pwd)
if [ ! -f "$kit/node_modules/.package-lock.json" ] ||
   [ "$kit/package-lock.json" -nt "$kit/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in packaging/realtime"
  (cd "$kit" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
