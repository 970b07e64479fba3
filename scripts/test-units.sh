#!/usr/bin/env bash
# Checks the systemd units, sysusers.d and tmpfiles.d files under packaging/systemd:
#   - `systemd-analyze security --offline=true`: exposure <= 1.0 for credvaultd.service and
#     <= 2.0 for credvault-gateway.service (the numbers are printed, for the record);
#   - `systemd-analyze verify` prints nothing and succeeds, for all four units;
#   - the sysusers.d file creates both users and the tmpfiles.d file applies cleanly.
#
# `verify` insists that every ExecStart= binary exists and that every man: page in
# Documentation= resolves. It runs against a throw-away root (--root=) holding a copy of
# the host's own units, the units under test in /etc/systemd/system, and /bin/true in
# place of credvaultd, credvault-gateway and kill (ExecReload=), so it works before (and without) a build;
# the man pages are looked up in MANDIR (the pages the build configured) via MANPATH.
#
# Usage: test-units.sh [UNIT_SOURCE_DIR [MANDIR]]
# Exit: 0 pass, 1 fail, 77 skipped (no systemd-analyze).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
units=${1:-$here/packaging/systemd}
mandir=${2:-}

MAX_DAEMON=${MAX_DAEMON_EXPOSURE:-1.0}
MAX_GATEWAY=${MAX_GATEWAY_EXPOSURE:-2.0}

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not installed"
  exit 77
fi

fail=0
bad() { echo "FAIL: $*"; fail=1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/credvault-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- exposure ---------------------------------------------------------------------------
exposure() {  # unit-file -> prints the overall exposure number, e.g. 0.5
  local out
  out=$(systemd-analyze security --offline=true --no-pager "$1" 2>&1) || true
  printf '%s\n' "$out" >"$tmp/security-$(basename "$1").txt"
  printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
check_exposure() {  # unit max
  local e
  e=$(exposure "$units/$1")
  if [ -z "$e" ]; then
    bad "$1: systemd-analyze security printed no exposure level"
    cat "$tmp/security-$1.txt"
    return
  fi
  echo "exposure $1: $e (limit $2)"
  if ! awk -v e="$e" -v m="$2" 'BEGIN { exit !(e <= m) }'; then
    bad "$1: exposure $e > $2; the items that cost:"
    grep '✗' "$tmp/security-$1.txt" || true
  fi
}
check_exposure credvaultd.service "$MAX_DAEMON"
check_exposure credvault-gateway.service "$MAX_GATEWAY"

# --- verify -----------------------------------------------------------------------------
root=$tmp/root
mkdir -p "$root/usr/lib/systemd" "$root/usr/sbin" "$root/usr/bin" "$root/etc/systemd/system"
ln -s usr/lib "$root/lib"
ln -s usr/sbin "$root/sbin"
ln -s usr/bin "$root/bin"
host_units=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
for d in "$host_units" /usr/lib/systemd/system /lib/systemd/system; do
  if [ -n "$d" ] && [ -e "$d/sysinit.target" ]; then
    cp -a "$d/." "$root/usr/lib/systemd/system/"
    break
  fi
done
[ -e "$root/usr/lib/systemd/system/sysinit.target" ] || bad "no host systemd units to verify against"
for b in credvaultd credvault-gateway; do
  install -m 0755 /bin/true "$root/usr/sbin/$b"
done
install -m 0755 /bin/true "$root/usr/bin/kill"  # the gateway's ExecReload=
unit_list=(credvaultd.socket credvaultd.service credvault-gateway.socket credvault-gateway.service)
for u in "${unit_list[@]}"; do
  install -m 0644 "$units/$u" "$root/etc/systemd/system/$u"
done

man_arg=--man=no
if [ -n "$mandir" ]; then
  # man(1) wants man<section>/ subdirectories.
  for page in "$mandir"/*.[0-9]; do
    [ -e "$page" ] || continue
    sec=${page##*.}
    mkdir -p "$tmp/man/man$sec"
    ln -s "$page" "$tmp/man/man$sec/"
  done
  if command -v man >/dev/null && [ -d "$tmp/man" ]; then
    man_arg=--man=yes
    export MANPATH=$tmp/man
  fi
fi

if out=$(systemd-analyze verify --root="$root" "$man_arg" "${unit_list[@]}" 2>&1); then
  rc=0
else
  rc=$?
fi
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
  bad "systemd-analyze verify ($man_arg), rc=$rc:"
  printf '%s\n' "$out"
else
  echo "verify: clean (${unit_list[*]}, $man_arg)"
fi

# --- sysusers.d / tmpfiles.d ------------------------------------------------------------
if command -v systemd-sysusers >/dev/null; then
  sroot=$tmp/sysroot
  mkdir -p "$sroot/etc"
  : >"$sroot/etc/passwd"; : >"$sroot/etc/group"; : >"$sroot/etc/shadow"; : >"$sroot/etc/gshadow"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$sroot/etc/passwd"
  printf 'root:x:0:\n' >"$sroot/etc/group"
  if out=$(systemd-sysusers --root="$sroot" "$units/credvault.sysusers" \
                   "$units/credvault-gateway.sysusers" 2>&1); then
    for u in credvault credvault-gateway; do
      grep -q "^$u:" "$sroot/etc/passwd" || bad "sysusers did not create user $u"
      grep -q "^$u:" "$sroot/etc/group" || bad "sysusers did not create group $u"
    done
    [ "$fail" -eq 0 ] && echo "sysusers: creates credvault, credvault-gateway"
    if [ "$(id -u)" -eq 0 ] && command -v systemd-tmpfiles >/dev/null; then
      if out=$(systemd-tmpfiles --root="$sroot" --create "$units/credvault.tmpfiles" 2>&1) &&
         [ -z "$out" ]; then
        # Owner by number: stat would name it from the host's passwd, not the root's.
        want="700 $(awk -F: '$1 == "credvault" { print $3 }' "$sroot/etc/passwd")"
        got=$(stat -c '%a %u' "$sroot/var/lib/credvault")
        if [ "$got" = "$want" ]; then
          echo "tmpfiles: applies cleanly, /var/lib/credvault is mode 700 owned by credvault"
        else
          bad "tmpfiles: /var/lib/credvault is '$got', want '$want'"
        fi
      else
        bad "systemd-tmpfiles --create: $out"
      fi
    fi
  else
    bad "systemd-sysusers: $out"
  fi
fi

exit "$fail"
