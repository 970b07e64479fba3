#!/bin/sh
# Figures for docs/performance.md §17 "Isolation (gateway)": runs the gateway isolation test
# (tests/frontends/gateway_isolation_test.py: real credvaultd + credvault-gateway on
# loopback) and prints, per attack, how the legitimate party (another source address) was
# served — p50/p99 of its requests — and how much the gateway's VmRSS grew.
#
#   frontends/bench/isolation-bench.sh [BUILD_DIR]      (default: build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
export CREDVAULTD="$build/daemon/credvaultd" CREDVAULTCTL="$build/tools/credvaultctl"
export CREDVAULT_GATEWAY="$build/frontends/credvault-gateway" PYTHONDONTWRITEBYTECODE=1
cd "$root/tests/frontends"
out=$(/usr/bin/python3 gateway_isolation_test.py 2>&1) || { printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out" | sed -n 's/^.*FIGURE //p'
