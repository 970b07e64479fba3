#!/usr/bin/env bash
# Counts copies of a secret, a password and a ticket left in the memory of credvaultd and
# credvault-gateway after requests that carried them are over (docs/performance.md §13).
#
# Starts a fresh daemon and gateway on a temporary state directory, adds an associate with
# a distinctive password, stores a credential with a distinctive secret, gets a ticket
# through the gateway (SOAP SoPrincipal.AuthenticateUsernamePassword), then runs 1,000 Gets,
# 8 at a time: half over IPC with credvaultctl (as root, and with the ticket), half over the
# gateway with curl (REST with Basic and with SoTicket, SOAP with the ticket). Every
# answer is checked to carry the secret. When both processes are idle it dumps them with
# gdb's gcore and counts every occurrence of each value (and of the Basic credential's
# base64) in each core, by memory region ([heap], [stack], anonymous, ...).
#
# gcore attaches with ptrace. credvaultd and the gateway set PR_SET_DUMPABLE 0, so only a
# tracer with CAP_SYS_PTRACE (root) may attach: the script must run as root. gcore leaves out
# MADV_DONTDUMP mappings (libsodium's sodium_malloc memory), as the kernel's core dumps do.
#
# Usage: scripts/secret-copies.sh [BUILD_DIR] [--gets N] [--parallel N] [--wrk SECONDS]
#                                 [--keep] [--max-copies N]
#   --gets: how many Gets (default 1000)
#   --parallel: Gets at a time over IPC and over HTTP (default 8)
#   --wrk: then load the gateway with wrk (64 connections, REST, SECONDS each with Basic and
#          with SoTicket), as the benchmarks do
#   --keep: keep the temporary directory (cores, maps, logs)
#   exit 0 when every count is at most --max-copies (default: no limit), 1 otherwise,
#   77 when gdb/gcore, curl or root is missing (the test-suite's "skipped").
set -euo pipefail

build=build
gets=1000
conc=8
wrk_secs=0
keep=0
max_copies=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --gets) gets=$2; shift 2 ;;
    --parallel) conc=$2; shift 2 ;;
    --wrk) wrk_secs=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --max-copies) max_copies=$2; shift 2 ;;
    -*) echo "secret-copies.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
build=$(realpath "$build")
# meson test sets MALLOC_PERTURB_, with which glibc itself fills some freed blocks: count what
# the executables do on their own.
unset MALLOC_PERTURB_ MALLOC_CHECK_
for tool in gcore gdb curl python3; do
  command -v "$tool" >/dev/null || { echo "skipping: $tool is not installed"; exit 77; }
done
if [[ $(id -u) -ne 0 ]]; then
  echo "skipping: gcore needs root to attach to non-dumpable processes"
  exit 77
fi
for b in daemon/credvaultd tools/credvaultctl frontends/credvault-gateway; do
  [[ -x "$build/$b" ]] || { echo "skipping: $build/$b is not built"; exit 77; }
done

dir=$(mktemp -d /tmp/credvault-secret-copies.XXXXXX)
chmod 0755 "$dir"
cleanup() {
  [[ -n "${gw:-}" ]] && kill "$gw" 2>/dev/null || true
  [[ -n "${dm:-}" ]] && kill "$dm" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ $keep -eq 1 ]]; then echo "kept: $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# Distinctive values: random, so that no other byte string in either process matches them,
# and of characters that need no escaping in JSON, XML or a shell.
rnd() { head -c 12 /dev/urandom | base64 | tr '+/' 'xy'; }
secret="SeCrEt-$(rnd)"
password="PaSsWoRd-$(rnd)"
name=copies
basic=$(printf '%s:%s' "$name" "$password" | base64 -w0)

sock=$dir/credvaultd.sock
port=$(python3 -c \
  'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$build/daemon/credvaultd" --config /dev/null --state-dir "$dir/state" --socket "$sock" \
  --create-key --set password_ops_limit=1 --set password_mem_limit=8192 \
  >"$dir/credvaultd.log" 2>&1 &
dm=$!
for _ in $(seq 200); do [[ -S "$sock" ]] && break; sleep 0.05; done
[[ -S "$sock" ]] || { echo "credvaultd did not start:"; cat "$dir/credvaultd.log"; exit 1; }
ctl() { "$build/tools/credvaultctl" --socket "$sock" "$@"; }
printf '%s\n' "$password" | ctl associate add "$name" --password-stdin >/dev/null
id=$(ctl --json associate show "$name" | python3 -c \
  'import json, sys; d = json.load(sys.stdin); print(d.get("AssociateId", d.get("associateId")))')
printf '%s' "$secret" | ctl save imap --public "$name@imap.example.org" --secret-stdin \
  --associate "$id" >/dev/null

"$build/frontends/credvault-gateway" --config /dev/null --vault-socket "$sock" \
  --listen "127.0.0.1:$port" >"$dir/gateway.log" 2>&1 &
gw=$!
base=http://127.0.0.1:$port
for _ in $(seq 200); do curl -s -o /dev/null "$base/api/v1" && break; sleep 0.05; done

soap_env() {  # PREFIX HEADERS BODY: a SOAP 1.2 envelope, PREFIX bound to Services86
  printf '<?xml version="1.0" encoding="UTF-8"?>'
  printf '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"'
  printf ' xmlns:%s="http://www.superoffice.net/ws/crm/NetServer/Services86">' "$1"
  printf '%s<SOAP-ENV:Body>%s</SOAP-ENV:Body></SOAP-ENV:Envelope>' "$2" "$3"
}
p=SoPrincipal
soap_env $p "" "<$p:AuthenticateUsernamePassword><$p:UserName>$name</$p:UserName>\
<$p:Password>$password</$p:Password></$p:AuthenticateUsernamePassword>" >"$dir/login.xml"
ticket=$(curl -s -f -H 'Content-Type: application/soap+xml; charset=utf-8' \
  --data-binary @"$dir/login.xml" "$base/Remote/Services86/SoPrincipal.svc" \
  | grep -o '>7T:[^<]*<' | tr -d '<>' | head -1)
[[ $ticket == 7T:* ]] || { echo "no ticket from the gateway:"; cat "$dir/gateway.log"; exit 1; }
rm -f "$dir/login.xml"

# ---- the Gets, --parallel at a time: a quarter each as root and with the ticket over IPC (one
# credvaultctl each), a sixth each over REST with Basic and SoTicket, and over SOAP.
ipc=$((gets / 2))
http=$((gets - ipc))
check() {  # FILE WHAT EXPECTED-COUNT: every answer carried the secret
  local n
  n=$(grep -o -F -- "$secret" "$1" | wc -l)
  [[ $n -eq $3 ]] || { echo "$2: $n of $3 answers carried the secret" >&2; exit 1; }
}
parallel() {  # COUNT COMMAND...: runs COMMAND COUNT times, $conc at a time
  local n=$1 w i pids=()
  shift
  for ((w = 0; w < conc; w++)); do
    ( for ((i = w; i < n; i += conc)); do "$@"; done ) &
    pids+=($!)
  done
  wait "${pids[@]}"
}
parallel $((ipc / 2)) ctl get imap --associate "$id" >"$dir/out"
check "$dir/out" "credvaultctl as root" $((ipc / 2))
parallel $((ipc - ipc / 2)) env CREDVAULT_TICKET="$ticket" "$build/tools/credvaultctl" \
  --socket "$sock" get imap >"$dir/out"
check "$dir/out" "credvaultctl with the ticket" $((ipc - ipc / 2))

urls() {  # COUNT URL: a curl config file asking for URL COUNT times ($conc connections at a time)
  local i
  for ((i = 0; i < $1; i++)); do printf 'url = "%s"\n' "$2"; done
}
rest=$base/api/v1/Agents/User/GetUntrustedCredentialsForAssociate
basic_n=$((http / 3)) ticket_n=$((http / 3)) soap_n=$((http - 2 * (http / 3)))
pcurl() { curl -s --no-progress-meter -Z --parallel-max "$conc" -K - "$@"; }
urls "$basic_n" "$rest" | pcurl -H "Authorization: Basic $basic" \
  -H 'Content-Type: application/json' -d '{"AssociateId":0,"Type":"imap"}' >"$dir/out"
check "$dir/out" "REST with Basic" "$basic_n"
urls "$ticket_n" "$rest" | pcurl -H "Authorization: SoTicket $ticket" \
  -H 'Content-Type: application/json' -d '{"AssociateId":0,"Type":"imap"}' >"$dir/out"
check "$dir/out" "REST with SoTicket" "$ticket_n"
soap_env User "<User:Credentials><User:Ticket>$ticket</User:Ticket></User:Credentials>" \
  "<User:GetUntrustedCredentialsForAssociate><User:AssociateId>0</User:AssociateId>\
<User:Type>imap</User:Type></User:GetUntrustedCredentialsForAssociate>" >"$dir/get.xml"
urls "$soap_n" "$base/Remote/Services86/User.svc" | pcurl \
  -H 'Content-Type: application/soap+xml; charset=utf-8' --data-binary @"$dir/get.xml" >"$dir/out"
check "$dir/out" "SOAP with the ticket" "$soap_n"
rm -f "$dir/out" "$dir/get.xml"

if [[ $wrk_secs -gt 0 ]]; then
  command -v wrk >/dev/null || { echo "skipping: --wrk needs wrk"; exit 77; }
  cat >"$dir/get.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"AssociateId":0,"Type":"imap"}'
wrk.headers["Content-Type"] = "application/json"
LUA
  for auth in "Basic $basic" "SoTicket $ticket"; do
    out=$(wrk -t1 -c64 -d"${wrk_secs}s" -s "$dir/get.lua" -H "Authorization: $auth" "$rest")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    echo "wrk ${auth%% *}: $n requests$(grep -E 'Non-2xx' <<<"$out" || true)"
  done
  rm -f "$dir/get.lua"
fi

# ---- idle: no CPU time used by either process for half a second.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for _ in $(seq 40); do
  a=$(($(cpu "$dm") + $(cpu "$gw"))); sleep 0.5; b=$(($(cpu "$dm") + $(cpu "$gw")))
  [[ $a -eq $b ]] && break
done

# ---- dump and count.
for p in "$dm" "$gw"; do
  cp "/proc/$p/maps" "$dir/maps.$p"
  gcore -o "$dir/core" "$p" >"$dir/gcore.$p.log" 2>&1 \
    || { echo "gcore $p failed:"; cat "$dir/gcore.$p.log"; exit 1; }
done

python3 - "$dir" "$dm" "$gw" "$secret" "$password" "$ticket" "$basic" "$sock" \
  "${max_copies:--1}" <<'PY'
import struct, sys

d, dm, gw, secret, password, ticket, basic, sock, max_copies = sys.argv[1:]
max_copies = int(max_copies)
needles = [("secret", secret), ("password", password), ("ticket", ticket),
           ("basic b64", basic)]
# The control: the socket path, which both processes keep in their heap while they run.
# If it is not found, the dump or the counting is broken, and zero copies would mean nothing.
control = ("socket path (control, live)", sock)

def segments(core):
    """(vaddr, file offset, file size) of each PT_LOAD of an ELF64 core."""
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
    out = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", core, phoff + i * phentsize)
        if p_type == 1 and p_filesz:
            out.append((p_vaddr, p_offset, p_filesz))
    return out

def regions(maps_file):
    out = []
    for line in open(maps_file):
        f = line.split(None, 5)
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        out.append((lo, hi, f[5].strip() if len(f) > 5 else "anonymous"))
    return out

def region_name(rs, addr):
    for lo, hi, name in rs:
        if lo <= addr < hi:
            if name.startswith("/"):
                return name.rsplit("/", 1)[1]
            return name
    return "?"

failed = False
print("%-18s %-28s %6s  %s" % ("process", "value", "copies", "where"))
for proc, pid in (("credvaultd", dm), ("credvault-gateway", gw)):
    core = open("%s/core.%s" % (d, pid), "rb").read()
    segs = segments(core)
    rs = regions("%s/maps.%s" % (d, pid))
    for label, needle in needles + [control]:
        needle = needle.encode()
        where = {}
        n = 0
        i = core.find(needle)
        while i >= 0:
            for vaddr, off, size in segs:
                if off <= i < off + size:
                    r = region_name(rs, vaddr + i - off)
                    break
            else:
                r = "(core notes)"
            where[r] = where.get(r, 0) + 1
            n += 1
            i = core.find(needle, i + 1)
        detail = ", ".join("%s %d" % kv for kv in sorted(where.items(), key=lambda kv: -kv[1]))
        print("%-18s %-28s %6d  %s" % (proc, label, n, detail))
        if (label, needle.decode()) == control:
            if n == 0:
                print("secret-copies.sh: the control is missing from the core of %s" % proc)
                failed = True
        elif max_copies >= 0 and n > max_copies:
            failed = True
sys.exit(1 if failed else 0)
PY
