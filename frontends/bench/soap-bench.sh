#!/usr/bin/env bash
# Benchmark of credvault-gateway's SOAP path (see docs/gateway.md, "Benchmark").
#
# Starts the real credvaultd and credvault-gateway from a build directory in a temporary
# directory, stores one credential for one associate, logs in for a ticket, then runs wrk
# with 64 connections on
#   1. GetUntrustedCredentialsForAssociate (AssociateId 0, Type imap) with the ticket, and
#   2. GET ?wsdl (29 KB, no daemon call) as the gateway's HTTP ceiling.
# Prints requests/s and latency percentiles for both.
#
# Usage: frontends/bench/soap-bench.sh [BUILD_DIR] [DURATION_SECONDS]
# Environment: THREADS (wrk threads, default 1), CONNECTIONS (default 64),
#              ACCESS_LOG=no to run the gateway with --no-access-log,
#              FAKE_VAULT=1 to put BUILD/frontends/fake-vault (answers instantly) in place of
#              credvaultd, measuring the gateway alone.
set -euo pipefail
BUILD=$(realpath "${1:-build}")
DURATION=${2:-10}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 77; }

DIR=$(mktemp -d /tmp/credvault-soap-bench.XXXXXX)
cleanup() {
  [ -n "${GW:-}" ] && kill "$GW" 2>/dev/null || true
  [ -n "${D:-}" ] && kill "$D" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
SOCK=$DIR/credvaultd.sock
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CTL=("$BUILD/tools/credvaultctl" --socket "$SOCK")

if [ "${FAKE_VAULT:-0}" = "1" ]; then
  "$BUILD/frontends/fake-vault" "$SOCK" >"$DIR/credvaultd.log" 2>&1 &
  D=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
  TICKET=7T:fake
else
  "$BUILD/daemon/credvaultd" --config /dev/null --state-dir "$DIR/state" --socket "$SOCK" \
      --create-key >"$DIR/credvaultd.log" 2>&1 &
  D=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
  echo "bench-password" | "${CTL[@]}" associate add bench --password-stdin >/dev/null
  TICKET=$(echo "bench-password" | "${CTL[@]}" login bench --password-stdin)
  echo "bench-secret" | CREDVAULT_TICKET=$TICKET "${CTL[@]}" save imap \
      --public bench@example.org --secret-stdin >/dev/null
fi

LOGOPT=()
[ "${ACCESS_LOG:-yes}" = "no" ] && LOGOPT=(--no-access-log)
"$BUILD/frontends/credvault-gateway" --config /dev/null --vault-socket "$SOCK" \
    --listen "127.0.0.1:$PORT" "${LOGOPT[@]}" >"$DIR/gateway.log" 2>&1 &
GW=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/Remote/Services86/User.svc?wsdl" && break
  sleep 0.05
done

cat >"$DIR/body.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope
 xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema"
 xmlns:User="http://www.superoffice.net/ws/crm/NetServer/Services86">
  <User:ApplicationToken>bench</User:ApplicationToken>
  <User:Credentials>
    <User:Ticket>$TICKET</User:Ticket>
  </User:Credentials>
 <SOAP-ENV:Body>
   <User:GetUntrustedCredentialsForAssociate>
    <User:AssociateId xsi:type="xsd:int">0</User:AssociateId>
    <User:Type xsi:type="xsd:string">imap</User:Type>
   </User:GetUntrustedCredentialsForAssociate>
 </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
XML
cat >"$DIR/post.lua" <<LUA
local f = io.open("$DIR/body.xml", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/soap+xml; charset=utf-8"
LUA

URL=http://127.0.0.1:$PORT/Remote/Services86/User.svc
check=$(curl -s -H 'Content-Type: application/soap+xml' --data-binary @"$DIR/body.xml" "$URL")
case "$check" in
  *'<User:Succeeded>true</User:Succeeded>'*bench-secret*) ;;
  *) echo "the benchmark request does not succeed:"; echo "$check"; exit 1 ;;
esac

TARGET=$(dirname "$(realpath "$0")")/target.awk
run() {
  local min_rps=$1 out
  echo "== $2"
  shift 2
  echo "\$ $*"
  out=$("$@")
  echo "$out" | grep -E "Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx|Socket errors"
  [ "$min_rps" -gt 0 ] && echo "$out" | awk -v min_rps="$min_rps" -v max_p99_ms=20 -f "$TARGET"
  return 0
}
echo "credvault-gateway SOAP benchmark: $(nproc) CPUs, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s," \
     "access log ${ACCESS_LOG:-yes}, daemon $([ "${FAKE_VAULT:-0}" = 1 ] && echo fake-vault || echo credvaultd)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
run 10000 "GetUntrustedCredentialsForAssociate with a ticket (one daemon round trip per request)" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$DIR/post.lua" "$URL"
run 0 "GET ?wsdl (HTTP ceiling, no daemon call)" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL?wsdl"
if grep -q -- "$TICKET\|bench-secret\|bench-password" "$DIR/gateway.log" "$DIR/credvaultd.log"; then
  echo "FAIL: a log contains a ticket, password or secret"; exit 1
fi
