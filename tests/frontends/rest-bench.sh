#!/usr/bin/env bash
# REST benchmark: GetUntrustedCredentialsForAssociate under wrk (64 connections) with SoTicket
# and with Basic (the daemon's password verification cache warm), against the real credvaultd
# and credvault-gateway on loopback. Prints wrk's summary and the CPU time each process spent
# per request. wrk runs one thread on the same two cores as the gateway and the daemon.
# Usage: rest-bench.sh BUILD_DIR [SECONDS] [extra gateway options, e.g. --no-access-log]
set -euo pipefail
build=${1:?usage: rest-bench.sh BUILD_DIR [SECONDS]}
secs=${2:-15}
shift 2 || shift $#
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 77; }
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cleanup() {
  [[ -n "${gw:-}" ]] && kill "$gw" 2>/dev/null || true
  [[ -n "${dm:-}" ]] && kill "$dm" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

"$build/daemon/credvaultd" --config /dev/null --state-dir "$dir/state" --socket "$dir/s" --create-key \
  --set password_ops_limit=1 --set password_mem_limit=8192 >"$dir/daemon.log" 2>&1 &
dm=$!
for _ in $(seq 100); do [[ -S "$dir/s" ]] && break; sleep 0.05; done
ctl() { "$build/tools/credvaultctl" --socket "$dir/s" "$@"; }
echo bench-pw | ctl associate add bench --password-stdin >/dev/null
echo s3cret | ctl save imap --public bench@imap.example.org --secret-stdin --associate 1 >/dev/null
ticket=$(echo bench-pw | ctl login bench --password-stdin)
"$build/frontends/credvault-gateway" --config /dev/null --vault-socket "$dir/s" --listen "127.0.0.1:$port" "$@" \
  >"$dir/gateway.log" 2>&1 &
gw=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/api/v1" && break; sleep 0.05; done

cat >"$dir/get.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"AssociateId":0,"Type":"imap"}'
wrk.headers["Content-Type"] = "application/json"
LUA
url="http://127.0.0.1:$port/api/v1/Agents/User/GetUntrustedCredentialsForAssociate"
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
idle() { awk '/^cpu / {print $5+$6; exit}' /proc/stat; }

run() {
  local name=$1 auth=$2 min_rps=$3
  # Warm up (fills the password cache for Basic), then measure.
  wrk -t1 -c64 -d2s -s "$dir/get.lua" -H "Authorization: $auth" "$url" >/dev/null
  local g0 d0 i0 g1 d1 i1 out n
  g0=$(cpu "$gw"); d0=$(cpu "$dm"); i0=$(idle)
  out=$(wrk -t1 -c64 -d"${secs}s" --latency -s "$dir/get.lua" -H "Authorization: $auth" "$url")
  g1=$(cpu "$gw"); d1=$(cpu "$dm"); i1=$(idle)
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "== $name"
  echo "$out" | grep -E "Latency  |50%|99%|requests in|Requests/sec|Non-2xx|Socket errors"
  echo "   cpu per request: gateway $(( (g1 - g0) * 1000000 / tick / n )) us," \
       "daemon $(( (d1 - d0) * 1000000 / tick / n )) us;" \
       "machine idle $(( (i1 - i0) * 100 / tick / secs / $(nproc) ))%," \
       "1-min load $(cut -d' ' -f1 /proc/loadavg)"
  echo "$out" | awk -v min_rps="$min_rps" -v max_p99_ms=20 \
      -f "$(dirname "$(realpath "$0")")/../../frontends/bench/target.awk"
}

curl -s -f -X POST -H "Authorization: SoTicket $ticket" -H 'Content-Type: application/json' \
  -d '{"AssociateId":0,"Type":"imap"}' "$url" >/dev/null
run "SoTicket" "SoTicket $ticket" 15000
run "Basic (cached)" "Basic $(printf 'bench:bench-pw' | base64)" 10000
