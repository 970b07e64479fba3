#!/usr/bin/env bash
# Installs what running needs, builds, and runs credvaultd and credvault-gateway on an
# embedded default: state and a generated master key in .state/ under the checkout.
# Ctrl-C stops both cleanly. If either fails to start, or stops on its own, everything is
# stopped and run.sh exits non-zero.
#
# Variables (README.md):
#   BUILD_DIR            build directory (default: build)
#   CREDVAULT_STATE_DIR  where the vault, its master key and the socket live (default: .state)
#   CREDVAULT_LISTEN     the gateway's address (default: 127.0.0.1:8080; plain HTTP, so keep
#                        it on loopback or see docs/gateway.md for TLS)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
./scripts/deps.sh --run
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
fail() {
  echo "run.sh: $*" >&2
  stop
  exit 1
}
trap 'stop; exit 0' INT TERM

running() { kill -0 "$1" 2>/dev/null; }

"$BUILD/daemon/credvaultd" --state-dir "$STATE/vault" --socket "$SOCKET" --create-key &
DAEMON=$!
pids+=("$DAEMON")
for _ in $(seq 100); do
  [ -S "$SOCKET" ] && break
  running "$DAEMON" || break
  sleep 0.1
done
running "$DAEMON" && [ -S "$SOCKET" ] || fail "credvaultd did not start (see its message above)"

# The gateway's /healthz, over bash's /dev/tcp (no curl needed to run): the status line.
health() {
  local hostport=$1 host port line
  host=${hostport%:*}; port=${hostport##*:}
  host=${host#[}; host=${host%]}
  [ "$host" = "0.0.0.0" ] && host=127.0.0.1
  [ "$host" = "::" ] && host=::1
  exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || return 1
  printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$hostport" >&3
  IFS= read -r -t 3 line <&3 || line=""
  exec 3<&- 3>&-
  printf '%s' "$line"
}

GATEWAY="$BUILD/frontends/credvault-gateway"
HAVE_GATEWAY=0
if [ -x "$GATEWAY" ]; then
  HAVE_GATEWAY=1
  "$GATEWAY" --config /dev/null --vault-socket "$SOCKET" --listen "$LISTEN" &
  GW=$!
  pids+=("$GW")
  status=""
  for _ in $(seq 100); do
    running "$GW" || break
    status=$(health "$LISTEN" || true)
    [[ "$status" == "HTTP/1.1 200"* ]] && break
    sleep 0.1
  done
  running "$GW" || fail "credvault-gateway did not start on $LISTEN (see its message above)"
  [[ "$status" == "HTTP/1.1 200"* ]] || fail "credvault-gateway does not answer on $LISTEN"
fi

ME=$(id -un)
cat <<INFO

credvault is running.
  state directory : $STATE/vault   (master key: $STATE/vault/master.key)
  vault socket    : $SOCKET
$( [ "$HAVE_GATEWAY" = 1 ] && echo "  health          : http://$LISTEN/healthz
  SOAP            : http://$LISTEN/Remote/Services88/User.svc  (?wsdl)
  REST            : http://$LISTEN/api/v1/Agents/User/<Operation>" )

Try, in another terminal:
  export CREDVAULT_SOCKET=$SOCKET
  $BUILD/tools/credvaultctl associate add $ME --uid $(id -u) --password-stdin <<< 'change-me'
  printf 'imap-password' | $BUILD/tools/credvaultctl save imap --public me@example.com --secret-stdin
  $BUILD/tools/credvaultctl get imap

Press Ctrl-C to stop.
INFO
# Either process ending on its own ends the run, with an error.
set +e
wait -n "${pids[@]}"
code=$?
set -e
[ "$stopped" = 1 ] && exit 0
fail "a process stopped on its own (exit status $code); stopping the rest"
