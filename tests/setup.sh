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
  nodejs node-typescript               # the realtime servers' shard function (README), compiled and run
  build-essential debhelper dpkg-dev fakeroot lintian man-db  # Debian package test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The redis-server package starts a system instance where it can; the
# tests never use it (each starts its own on a socket in a temp dir).
