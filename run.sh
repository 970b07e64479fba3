#!/usr/bin/env bash
# Installs what is missing, builds, and runs credvaultd (and the gateway, when built) on an
# embedded default: state and a generated master key in .state/ under the checkout.
# Ctrl-C stops both cleanly.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
./scripts/deps.sh
BUILD=${BUILD_DIR:-build}
[ -d "$BUILD" ] || meson setup "$BUILD" -Dtests=false
ninja -C "$BUILD"

STATE=${CREDVAULT_STATE_DIR:-$ROOT/.state}
SOCKET=$STATE/credvaultd.sock
LISTEN=${CREDVAULT_LISTEN:-127.0.0.1:8080}
mkdir -p "$STATE"
chmod 0711 "$STATE"   # other local users must reach the socket; the files inside are 0600

pids=()
stopped=0
stop() {
  trap - INT TERM
  [ "$stopped" = 1 ] && return
  stopped=1
  echo
  echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "stopped."
}
trap stop INT TERM

"$BUILD/daemon/credvaultd" --state-dir "$STATE/vault" --socket "$SOCKET" --create-key &
pids+=($!)
for _ in $(seq 100); do [ -S "$SOCKET" ] && break; sleep 0.1; done
[ -S "$SOCKET" ] || { echo "credvaultd did not start"; stop; exit 1; }

GATEWAY="$BUILD/frontends/credvault-gateway"
if [ -x "$GATEWAY" ]; then
  "$GATEWAY" --vault-socket "$SOCKET" --listen "$LISTEN" &
  pids+=($!)
fi

cat <<INFO

credvault is running.
  state directory : $STATE/vault   (master key: $STATE/vault/master.key)
  vault socket    : $SOCKET
$( [ -x "$GATEWAY" ] && echo "  SOAP            : http://$LISTEN/Remote/Services88/User.svc  (?wsdl)
  REST            : http://$LISTEN/api/v1/Agents/User/<Operation>" )

Try, in another terminal:
  export CREDVAULT_SOCKET=$SOCKET
  $BUILD/tools/credvaultctl associate add \$USER --uid \$(id -u) --password-stdin <<< 'change-me'
  printf 'imap-password' | $BUILD/tools/credvaultctl save imap --public me@example.com --secret-stdin
  $BUILD/tools/credvaultctl get imap

Press Ctrl-C to stop.
INFO
wait "${pids[0]}" || true
stop
