#!/usr/bin/env bash
# The install test for the Debian packages (and a build check of the RPM spec).
#
#   1. builds the .debs from the working tree (a copy of it: the tree stays clean) and
#      runs lintian on them (errors fail the test);
#   2. builds a "newer" set: the same tree with a bumped Debian version (or, with
#      --old-debs DIR, installs the debs in DIR first and upgrades to the tree's build);
#   3. makes a clean Debian root with debootstrap (cached as a tarball), installs the
#      first set there with apt-get, and checks users, directories, the master key and
#      the enabled socket;
#   4. starts credvaultd from the unit's own ExecStart= (and User=) under
#      systemd-socket-activate, as PID 1 is not systemd here, with a NOTIFY_SOCKET that
#      must receive READY=1 and WATCHDOG=1;
#   5. as ordinary users, stores credentials through the socket with credvaultctl;
#   6. seals the master key with systemd-creds (the key file is removed, as the
#      operations guide allows), upgrades to the newer set, checks that no new key was
#      generated, restarts the daemon with the sealed key decrypted into a credentials
#      directory (what LoadCredentialEncrypted= does) and reads every credential back;
#   7. removes, purges (the vault must survive), reinstalls (the vault must open), and
#      purges with CREDVAULT_PURGE_DATA=yes (the vault must be gone);
#   8. if systemd-nspawn is installed (package systemd-container): boots a second clean
#      root with systemd as its PID 1 and repeats install, socket activation, use,
#      sealing and upgrade with the units running for real (sandbox included).
#
# Slow (a package build, debootstrap the first time, apt): run by hand or in its own CI
# step, not from ./test.sh. Needs root, network access to the Debian mirror, and
# `./scripts/deps.sh --packaging`.
#
# Usage: scripts/test-packaging.sh [--rpm] [--old-debs DIR] [--no-nspawn] [--keep]
#   --rpm        also build the RPMs with rpmbuild (Debian's rpm: --nodeps, macro fallbacks)
#   --old-debs   upgrade from these .debs instead of from a version-bumped rebuild
#   --no-nspawn  skip step 8 (see below)
#   --keep       keep the work directory and the root (printed at the end)
# Environment:
#   CREDVAULT_PKGTEST_DIR   cache and work directory (default /tmp/credvault-pkgtest)
#   DEBIAN_MIRROR           mirror for debootstrap (default: the one apt uses here)
#   DEBIAN_SUITE            default bookworm
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
base=${CREDVAULT_PKGTEST_DIR:-/tmp/credvault-pkgtest}
suite=${DEBIAN_SUITE:-bookworm}
want_rpm=no
want_nspawn=yes
old_debs=""
keep=no
while [ $# -gt 0 ]; do
  case $1 in
    --rpm) want_rpm=yes ;;
    --old-debs) old_debs=$(cd "$2" && pwd); shift ;;
    --keep) keep=yes ;;
    --no-nspawn) want_nspawn=no ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
  esac
  shift
done

[ "$(id -u)" -eq 0 ] || { echo "test-packaging.sh must run as root (debootstrap, chroot)" >&2; exit 1; }
for tool in dpkg-buildpackage dch lintian debootstrap; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run ./scripts/deps.sh --packaging" >&2; exit 1; }
done

# --- timing and failure reporting ------------------------------------------------------
declare -a timings=()
step_name=""; step_start=0
step() {
  local now; now=$(date +%s.%N)
  if [ -n "$step_name" ]; then
    timings+=("$(printf '%7.1fs  %s' "$(echo "$now - $step_start" | bc)" "$step_name")")
  fi
  step_name=$1; step_start=$now
  [ -n "$1" ] && echo "=== $1"
  return 0
}
fail() { echo "FAIL: $*" >&2; exit 1; }
check() {  # description command...
  local what=$1; shift
  if "$@" >/dev/null; then echo "  ok: $what"; else fail "$what"; fi
}

work=$(mktemp -d "$base/run.XXXXXX" 2>/dev/null || { mkdir -p "$base"; mktemp -d "$base/run.XXXXXX"; })
root=$work/root
daemon_pid=""
notify_pid=""
ns_pid=""
cleanup() {
  set +e
  if [ -n "$ns_pid" ]; then kill -TERM "$ns_pid" 2>/dev/null; wait "$ns_pid" 2>/dev/null; fi
  mountpoint -q "$work/sysroot/proc" 2>/dev/null && umount -l "$work/sysroot/proc"
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$notify_pid" ] && kill "$notify_pid" 2>/dev/null && wait "$notify_pid" 2>/dev/null
  for m in dev/pts dev proc sys; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
  done
  if [ "$keep" = yes ]; then
    echo "kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

total_start=$(date +%s.%N)

# --- 1. build ---------------------------------------------------------------------------
step "copy the working tree"
tree=$work/src/credvault
mkdir -p "$tree"
# Tracked and new (not ignored) files: what the next commit would hold, without anyone's
# build directories. Read-only git use.
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$src" && xargs -0 cp --parents -a -t "$tree" 2>/dev/null) || true
else  # an unpacked release tarball
  tar -C "$src" --exclude='./build*' --exclude='./obj-*' --exclude='./debian/tmp' -cf - . |
    tar -C "$tree" -xf -
fi
[ -f "$tree/debian/rules" ] || fail "copy of the tree has no debian/rules"
version=$(cd "$tree" && dpkg-parsechangelog -SVersion)
if [ "$want_rpm" = yes ]; then
  # The RPM's Source0, made now, before the Debian build litters the copy.
  top=$work/rpmbuild
  rpm_version=$(sed -n 's/^Version:[[:space:]]*//p' "$tree/packaging/rpm/credvault.spec")
  mkdir -p "$top/SOURCES"
  tar -C "$work/src" --transform "s,^credvault,credvault-$rpm_version," \
    -czf "$top/SOURCES/credvault-$rpm_version.tar.gz" credvault
fi

build_debs() {  # outdir
  (cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
     dpkg-buildpackage -us -uc -b "${@:2}") >"$work/build-$(basename "$1").log" 2>&1 ||
    { tail -40 "$work/build-$(basename "$1").log"; fail "dpkg-buildpackage (log: $work/build-$(basename "$1").log)"; }
  mkdir -p "$1"
  mv "$work"/src/*.deb "$1"/
  rm -f "$work"/src/*.changes "$work"/src/*.buildinfo
}

step "dpkg-buildpackage $version"
build_debs "$work/debs-new"
ls -1 "$work/debs-new"

step "lintian"
lintian_out=$(lintian --tag-display-limit 0 "$work"/debs-new/*.deb 2>&1 || true)
printf '%s\n' "$lintian_out" | sed 's/^/  /'
if printf '%s\n' "$lintian_out" | grep -q '^E:'; then
  fail "lintian reports errors"
fi
echo "  ok: no lintian errors"

step "credvault-dev: a client compiles and links with pkg-config credvault"
devroot=$work/dev
dpkg-deb -x "$(ls "$work"/debs-new/credvault-dev_*.deb)" "$devroot"
cat >"$work/client.c++" <<'EOF_CLIENT'
#include "ipc/client.h"
#include <cstdio>
// Uses the generated schema header and the static client library.
int main() {
  auto path = credvault::ipc::socketPath(nullptr);
  std::printf("%s %llx\n", path.cStr(),
              (unsigned long long)credvault::rpc::Vault::_capnpPrivate::typeId);
}
EOF_CLIENT
pc_dir=$(dirname "$(find "$devroot" -name credvault.pc | head -n1)")
# shellcheck disable=SC2046  # pkg-config output is a list of flags
PKG_CONFIG_SYSROOT_DIR=$devroot PKG_CONFIG_PATH=$pc_dir \
  g++ -std=c++20 "$work/client.c++" -o "$work/client" \
  $(PKG_CONFIG_SYSROOT_DIR=$devroot PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs credvault) ||
  fail "a client of credvault-dev does not build"
check "the client runs ($("$work/client"))" "$work/client"

if [ -n "$old_debs" ]; then
  first=$old_debs
  second=$work/debs-new
else
  step "dpkg-buildpackage, newer version"
  (cd "$tree" && DEBEMAIL=test@localhost DEBFULLNAME=test-packaging \
     dch --newversion "${version}+pkgtest1" --distribution unstable --force-distribution \
         "Upgrade test build." >/dev/null 2>&1)
  build_debs "$work/debs-bumped" -nc
  first=$work/debs-new
  second=$work/debs-bumped
fi
new_version=$(dpkg-deb -f "$(ls "$second"/credvault_*.deb)" Version)
old_version=$(dpkg-deb -f "$(ls "$first"/credvault_*.deb)" Version)
echo "  upgrade: $old_version -> $new_version"
dpkg --compare-versions "$new_version" gt "$old_version" || fail "second build is not newer"

if [ "$want_rpm" = yes ]; then
  step "rpmbuild (Debian's rpm, --nodeps)"
  rpmbuild -bb --nodeps --without check --define "_topdir $top" \
    "$tree/packaging/rpm/credvault.spec" >"$work/rpmbuild.log" 2>&1 ||
    { tail -40 "$work/rpmbuild.log"; fail "rpmbuild (log: $work/rpmbuild.log)"; }
  find "$top/RPMS" -name '*.rpm' -printf '  %f\n'
  for r in "$top"/RPMS/*/credvault-"$rpm_version"*.rpm; do
    rpm -qpl "$r" 2>/dev/null | grep -q '^/usr/sbin/credvaultd$' || fail "rpm lacks credvaultd"
  done
fi

# --- 3. a clean Debian root -------------------------------------------------------------
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\)[[:space:]]*$/\1/p' \
             /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /debian$/ { print $2; exit }' \
                                 /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
cache=$base/$suite-minbase.tar
step "Debian root ($suite from $mirror)"
if [ ! -s "$cache" ]; then
  echo "  debootstrap (cached afterwards as $cache)"
  debootstrap --variant=minbase --include=systemd,ca-certificates "$suite" \
    "$work/bootstrap" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  tar -C "$work/bootstrap" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
  rm -rf "$work/bootstrap"
fi
mkdir -p "$root"
tar -C "$root" -xf "$cache"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts" 2>/dev/null || true
mount -t sysfs sysfs "$root/sys" 2>/dev/null || true
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
              LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
as_user() { local u=$1; shift
            chroot --userspec="$u" "$root" /usr/bin/env -i PATH=/usr/bin:/bin \
              HOME=/tmp LANG=C.UTF-8 "$@"; }
check "PID 1 of the root is not systemd (no /run/systemd/system)" test ! -d "$root/run/systemd/system"

step "apt-get update in the root"
in_root apt-get update -qq >"$work/apt-update.log" 2>&1 || { cat "$work/apt-update.log"; fail "apt-get update"; }

# --- install ----------------------------------------------------------------------------
install_debs() {  # dir [env...]
  local d=$1; shift
  rm -rf "$root/tmp/debs" && mkdir -p "$root/tmp/debs" && cp "$d"/*.deb "$root/tmp/debs/"
  local debs=() p f
  for p in credvault credvault-gateway credvault-dev; do
    for f in "$root"/tmp/debs/"${p}"_*.deb; do debs+=("/tmp/debs/${f##*/}"); done
  done
  in_root "$@" apt-get install -y -q --no-install-recommends "${debs[@]}" \
    >"$work/apt-install.log" 2>&1 || { tail -40 "$work/apt-install.log"; fail "apt-get install"; }
  grep -E '^credvault' "$work/apt-install.log" | sed 's/^/  | /' || true
}

step "install $old_version"
install_debs "$first"
for u in credvault credvault-gateway; do
  check "user $u exists" in_root getent passwd "$u" >/dev/null
done
check "/var/lib/credvault is 0700 credvault" \
  test "$(in_root stat -c '%a %U:%G' /var/lib/credvault)" = "700 credvault:credvault"
check "master key generated, 0600 credvault" \
  test "$(in_root stat -c '%a %U' /var/lib/credvault/master.key)" = "600 credvault"
key_sum=$(sha256sum <"$root/var/lib/credvault/master.key")
check "credvaultd.socket enabled" test -L "$root/etc/systemd/system/sockets.target.wants/credvaultd.socket"
check "credvault-gateway.service enabled" \
  test -L "$root/etc/systemd/system/multi-user.target.wants/credvault-gateway.service"
check "reconfigure keeps the key" in_root dpkg-reconfigure credvault
check "master key unchanged" test "$(sha256sum <"$root/var/lib/credvault/master.key")" = "$key_sum"

# --- 4. the daemon, from its unit -------------------------------------------------------
unit=$root/lib/systemd/system/credvaultd.service
[ -f "$unit" ] || unit=$root/usr/lib/systemd/system/credvaultd.service
socket_unit=$(dirname "$unit")/credvaultd.socket
unit_value() { sed -n "s/^$1=//p" "$2" | tail -n1; }
exec_start=$(unit_value ExecStart "$unit")
run_user=$(unit_value User "$unit")
listen=$(unit_value ListenStream "$socket_unit")
socket_mode=$(unit_value SocketMode "$socket_unit")
echo "  ExecStart=$exec_start (User=$run_user, ListenStream=$listen, SocketMode=$socket_mode)"

start_daemon() {  # [extra env assignments for the daemon]
  local env_args=(-E WATCHDOG_USEC=2000000 -E NOTIFY_SOCKET=/run/credvault-test-notify.sock)
  local e
  for e in "$@"; do env_args+=(-E "$e"); done
  rm -f "$root/run/credvault-test-notify.sock" "$work/notify.log"
  # The service manager's side of sd_notify: a datagram socket that logs what it gets.
  /usr/bin/python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode() + "\n")
' "$root/run/credvault-test-notify.sock" "$work/notify.log" &
  notify_pid=$!
  for _ in $(seq 50); do [ -S "$root/run/credvault-test-notify.sock" ] && break; sleep 0.1; done
  # The runtime directory, as RuntimeDirectory= leaves it; no stale socket in it.
  in_root install -d -m 0755 -o "$run_user" -g "$run_user" "$(dirname "$listen")"
  rm -f "$root$listen"
  # shellcheck disable=SC2086  # ExecStart= is split on spaces, as systemd does here
  chroot --userspec="$run_user:$run_user" "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin \
    systemd-socket-activate -l "$listen" "${env_args[@]}" $exec_start \
    >"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do [ -S "$root$listen" ] && break; sleep 0.1; done
  [ -S "$root$listen" ] || { cat "$work/daemon.log"; fail "no socket at $listen"; }
  chmod "$socket_mode" "$root$listen"     # SocketMode= of the socket unit
  # First connection activates the daemon; wait for READY=1.
  as_user nobody credvaultctl status >/dev/null 2>&1 || true
  for _ in $(seq 100); do grep -q READY=1 "$work/notify.log" 2>/dev/null && break; sleep 0.1; done
  grep -q READY=1 "$work/notify.log" || { cat "$work/daemon.log"; fail "credvaultd sent no READY=1"; }
  echo "  ok: credvaultd is up (READY=1)"
}
stop_daemon() {
  kill -TERM "$daemon_pid"
  local rc=0
  wait "$daemon_pid" || rc=$?
  daemon_pid=""
  # The listener may still be reading the last datagrams.
  for _ in $(seq 30); do grep -q STOPPING=1 "$work/notify.log" && break; sleep 0.1; done
  kill "$notify_pid" 2>/dev/null; wait "$notify_pid" 2>/dev/null || true; notify_pid=""
  [ "$rc" -eq 0 ] || { cat "$work/daemon.log"; fail "credvaultd exited with $rc on SIGTERM"; }
  grep -q STOPPING=1 "$work/notify.log" || fail "credvaultd sent no STOPPING=1"
  echo "  ok: credvaultd stopped cleanly (STOPPING=1, exit 0)"
}

step "start credvaultd under systemd-socket-activate"
start_daemon
sleep 1.2
check "watchdog pings (WATCHDOG=1)" grep -q WATCHDOG=1 "$work/notify.log"

# --- 5. ordinary users through the socket -----------------------------------------------
step "credvaultctl as ordinary users"
users=(alice bob)
for u in "${users[@]}"; do
  in_root useradd --create-home --shell /bin/bash "$u"
  uid=$(in_root id -u "$u")
  in_root credvaultctl associate add "$u" --uid "$uid" >/dev/null || fail "associate add $u"
done
check "root (a system user) sees both associates" \
  bash -c "test \"\$(chroot '$root' credvaultctl --json associate list | grep -o -E 'alice|bob' | sort -u | wc -l)\" = 2"
n_creds=0
for u in "${users[@]}"; do
  for i in 1 2 3 4 5; do
    printf 'secret-%s-%s-%s' "$u" "$i" "$RANDOM" >"$work/secret-$u-$i"
    as_user "$u" credvaultctl save imap --public "$u$i@example.com" --secret-stdin \
      --comment "mailbox $i" <"$work/secret-$u-$i" || fail "$u: save imap $i"
    n_creds=$((n_creds + 1))
  done
  printf 'smtp-%s' "$u" | as_user "$u" credvaultctl save smtp --public "relay.example.com" \
    --secret-stdin || fail "$u: save smtp"
  n_creds=$((n_creds + 1))
done
for u in "${users[@]}"; do
  as_user "$u" credvaultctl --json get imap >"$work/before-$u-imap.json" || fail "$u: get imap"
  as_user "$u" credvaultctl --json get smtp >"$work/before-$u-smtp.json" || fail "$u: get smtp"
  for i in 1 2 3 4 5; do
    grep -q -F "$(cat "$work/secret-$u-$i")" "$work/before-$u-imap.json" ||
      fail "$u: secret $i not returned"
  done
done
echo "  ok: $n_creds credentials saved and read back by their owners"
alice_id=$(as_user alice credvaultctl --json whoami | sed -n 's/.*"AssociateId":\([0-9]*\).*/\1/p')
[ -n "$alice_id" ] || fail "alice: whoami gave no associate id"
rc=0; as_user bob credvaultctl get imap --associate "$alice_id" >/dev/null 2>&1 || rc=$?
check "bob may not read alice's credentials (exit $rc, permission denied)" test "$rc" -eq 3
rc=0; as_user nobody credvaultctl get imap >/dev/null 2>&1 || rc=$?
check "an unmapped uid is not authenticated (exit $rc)" test "$rc" -eq 12

step "stop credvaultd"
stop_daemon

# --- 6. seal the key, upgrade -----------------------------------------------------------
step "seal the master key with systemd-creds, remove the key file"
# systemd-creds needs the host key; in a real system PID 1 made it at first boot.
in_root systemd-creds setup >/dev/null 2>&1 || true
mkdir -p "$root/etc/credstore.encrypted"
in_root systemd-creds encrypt --with-key=host --name=credvault.key \
  /var/lib/credvault/master.key /etc/credstore.encrypted/credvault.key ||
  fail "systemd-creds encrypt"
cp -a "$root/var/lib/credvault/master.key" "$work/master.key.saved"
rm -f "$root/var/lib/credvault/master.key"
echo "  ok: sealed to /etc/credstore.encrypted/credvault.key"

step "upgrade $old_version -> $new_version"
install_debs "$second"
# shellcheck disable=SC2016  # ${Version} is dpkg-query's, not the shell's
check "package version is $new_version" \
  test "$(in_root dpkg-query -W -f='${Version}' credvault)" = "$new_version"
check "no new key file generated next to the sealed key" test ! -e "$root/var/lib/credvault/master.key"

step "credvaultd with the sealed key (as LoadCredentialEncrypted= provides it)"
creds=/run/credentials/credvaultd.service
mkdir -p "$root$creds"
in_root systemd-creds decrypt --name=credvault.key /etc/credstore.encrypted/credvault.key \
  "$creds/credvault.key" || fail "systemd-creds decrypt"
in_root chown -R "$run_user:" "$creds"
chmod 0500 "$root$creds"; chmod 0400 "$root$creds/credvault.key"
start_daemon "CREDENTIALS_DIRECTORY=$creds"
check "master key read from the credentials directory" grep -q "systemd credential" "$work/daemon.log"
for u in "${users[@]}"; do
  for t in imap smtp; do
    as_user "$u" credvaultctl --json get "$t" >"$work/after-$u-$t.json" || fail "$u: get $t after upgrade"
    cmp -s "$work/before-$u-$t.json" "$work/after-$u-$t.json" ||
      { diff "$work/before-$u-$t.json" "$work/after-$u-$t.json"; fail "$u: $t changed across the upgrade"; }
  done
done
echo "  ok: all $n_creds credentials identical after the upgrade"
stop_daemon
rm -rf "${root:?}$creds"
# Back to the key file for the rest (as an administrator undoing the sealing would).
cp -a "$work/master.key.saved" "$root/var/lib/credvault/master.key"
rm -f "$root/etc/credstore.encrypted/credvault.key"

# --- 7. remove / purge ------------------------------------------------------------------
step "remove, purge, reinstall, purge with CREDVAULT_PURGE_DATA=yes"
in_root apt-get remove -y -q credvault-gateway credvault credvault-dev >/dev/null 2>&1 || fail "apt-get remove"
check "remove keeps the vault" test -e "$root/var/lib/credvault/data.mdb" -a -e "$root/var/lib/credvault/master.key"
check "remove keeps the configuration" test -e "$root/etc/credvault/credvaultd.conf"
in_root dpkg --purge credvault-gateway credvault >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
sed 's/^/  | /' "$work/purge.log"
check "purge removes the configuration" test ! -e "$root/etc/credvault/credvaultd.conf"
check "purge keeps the vault and its key" \
  test -e "$root/var/lib/credvault/data.mdb" -a -e "$root/var/lib/credvault/master.key"
check "purge keeps the master key intact" \
  test "$(sha256sum <"$root/var/lib/credvault/master.key")" = "$key_sum"
check "purge removes the enablement symlink" \
  test ! -e "$root/etc/systemd/system/sockets.target.wants/credvaultd.socket"
install_debs "$second"
check "reinstall keeps the old key" test "$(sha256sum <"$root/var/lib/credvault/master.key")" = "$key_sum"
start_daemon
as_user alice credvaultctl --json get imap >"$work/reinstalled-alice.json" || fail "alice: get after reinstall"
check "the vault opens after purge + reinstall" cmp -s "$work/before-alice-imap.json" "$work/reinstalled-alice.json"
stop_daemon
in_root apt-get remove -y -q credvault-gateway credvault credvault-dev >/dev/null 2>&1 || fail "apt-get remove"
in_root env CREDVAULT_PURGE_DATA=yes dpkg --purge credvault-gateway credvault >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log"; fail "dpkg --purge"; }
sed 's/^/  | /' "$work/purge.log"
check "purge with CREDVAULT_PURGE_DATA=yes deletes the vault" test ! -e "$root/var/lib/credvault"
check "... and the users stay (Debian policy)" in_root getent passwd credvault >/dev/null

# --- 8. under a real systemd: systemd-nspawn --boot ---------------------------------------
# PID 1 here is not systemd, but a container can boot one. There the units run exactly as
# shipped -- sandbox, socket activation, LoadCredentialEncrypted=, watchdog -- and the
# maintainer scripts take their "systemd is running" branches.
nspawn_test() {
  local sroot=$work/sysroot init_pid="" state
  step "systemd-nspawn --boot: prepare a root"
  mkdir -p "$sroot"
  tar -C "$sroot" -xf "$cache"
  cp /etc/resolv.conf "$sroot/etc/resolv.conf" 2>/dev/null || true
  mkdir -p "$sroot/srv/debs-old" "$sroot/srv/debs-new"
  cp "$first"/*.deb "$sroot/srv/debs-old/"; cp "$second"/*.deb "$sroot/srv/debs-new/"
  # The container gets no network (its gateway port stays its own): fetch every
  # dependency into apt's cache first, through a chroot with the host's network.
  mount -t proc proc "$sroot/proc"
  local pkgs=() p f
  for p in credvault credvault-gateway credvault-dev; do
    for f in "$sroot"/srv/debs-old/"${p}"_*.deb "$sroot"/srv/debs-new/"${p}"_*.deb; do
      pkgs+=("/srv/${f#"$sroot"/srv/}")
    done
  done
  chroot "$sroot" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get install -y -q -d --no-install-recommends "$@"' sh \
    "${pkgs[@]}" >"$work/nspawn-apt.log" 2>&1 || { tail -20 "$work/nspawn-apt.log"; umount "$sroot/proc"; fail "apt-get -d"; }
  umount "$sroot/proc"

  step "systemd-nspawn --boot: boot"
  systemd-nspawn -D "$sroot" --boot --register=no --keep-unit --private-network -q \
    >"$work/nspawn.log" 2>&1 &
  ns_pid=$!
  for _ in $(seq 100); do init_pid=$(pgrep -P "$ns_pid" || true); init_pid=${init_pid%%$'\n'*}; [ -n "$init_pid" ] && break; sleep 0.1; done
  [ -n "$init_pid" ] || { cat "$work/nspawn.log"; fail "systemd-nspawn did not start"; }
  in_ct() { nsenter -t "$init_pid" -m -u -i -n -p -- /usr/bin/env -i \
              PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
  ct_user() { local u=$1; shift; in_ct setpriv --reuid="$u" --regid="$u" --init-groups "$@"; }
  ct_stop() { kill -TERM "$ns_pid" 2>/dev/null; wait "$ns_pid" 2>/dev/null || true; ns_pid=""; }
  # Until PID 1 has its private socket up, systemctl cannot connect at all.
  for _ in $(seq 300); do [ -S "$sroot/run/systemd/private" ] && break; sleep 0.1; done
  state=$(timeout 60 nsenter -t "$init_pid" -m -u -i -n -p -- systemctl is-system-running --wait 2>&1 || true)
  echo "  container: $state"
  [ "$state" = running ] || [ "$state" = degraded ] || { ct_stop; fail "container did not boot ($state)"; }

  step "systemd-nspawn --boot: install $old_version under systemd"
  local olddebs=() newdebs=()
  for p in credvault credvault-gateway credvault-dev; do
    for f in "$sroot"/srv/debs-old/"${p}"_*.deb; do olddebs+=("/srv/debs-old/${f##*/}"); done
    for f in "$sroot"/srv/debs-new/"${p}"_*.deb; do newdebs+=("/srv/debs-new/${f##*/}"); done
  done
  in_ct apt-get install -y -q --no-install-recommends "${olddebs[@]}" >"$work/nspawn-install.log" 2>&1 ||
    { tail -30 "$work/nspawn-install.log"; ct_stop; fail "install under systemd"; }
  check "credvaultd.socket is enabled and listening" \
    test "$(in_ct systemctl is-enabled credvaultd.socket)/$(in_ct systemctl is-active credvaultd.socket)" = enabled/active
  check "credvaultd.service waits for its first connection" \
    test "$(in_ct systemctl is-active credvaultd.service)" = inactive
  in_ct useradd -m carol
  in_ct credvaultctl associate add carol --uid "$(in_ct id -u carol)" >/dev/null || { ct_stop; fail "associate add carol"; }
  check "credvaultd.service was socket-activated" test "$(in_ct systemctl is-active credvaultd.service)" = active
  printf 'carol-secret' | ct_user carol credvaultctl save imap --public carol@example.com --secret-stdin ||
    { ct_stop; fail "carol: save"; }
  ct_user carol credvaultctl --json get imap >"$work/ct-before.json" || { ct_stop; fail "carol: get"; }
  check "carol reads her secret through the sandboxed daemon" grep -q carol-secret "$work/ct-before.json"
  check "backup streamed from the sandboxed daemon, written by root outside its sandbox" \
    in_ct credvaultctl backup /root/credvault-test.mdb
  check "rotate-key" in_ct credvaultctl rotate-key
  local exposure
  exposure=$(in_ct systemd-analyze security credvaultd.service --no-pager 2>/dev/null |
             sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  echo "  exposure of the running credvaultd.service: $exposure"
  if [ -e "$sroot/usr/sbin/credvault-gateway" ]; then
    check "credvault-gateway.service is running" \
      test "$(in_ct systemctl is-active credvault-gateway.service)" = active
    # A WSDL request through the gateway, with bash's /dev/tcp (no curl in the root).
    local reply
    reply=$(in_ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 &&
      printf "GET /Remote/Services88/User.svc?wsdl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3 &&
      timeout 5 cat <&3' 2>&1 | head -n1 || true)
    check "the gateway answers on 127.0.0.1:8080 (${reply%$'\r'})" grep -q ' 200' <<<"$reply"
  fi

  step "systemd-nspawn --boot: seal the key, upgrade to $new_version"
  in_ct install -d -m 0700 /etc/credstore.encrypted
  in_ct systemd-creds encrypt --name=credvault.key /var/lib/credvault/master.key \
    /etc/credstore.encrypted/credvault.key 2>/dev/null || { ct_stop; fail "systemd-creds encrypt"; }
  in_ct rm /var/lib/credvault/master.key
  in_ct apt-get install -y -q --no-install-recommends "${newdebs[@]}" >"$work/nspawn-upgrade.log" 2>&1 ||
    { tail -30 "$work/nspawn-upgrade.log"; ct_stop; fail "upgrade under systemd"; }
  check "no key file generated next to the sealed key" test ! -e "$sroot/var/lib/credvault/master.key"
  ct_user carol credvaultctl --json get imap >"$work/ct-after.json" || { ct_stop; fail "carol: get after upgrade"; }
  check "carol's credential is unchanged after the upgrade" cmp -s "$work/ct-before.json" "$work/ct-after.json"
  check "the daemon took the key from LoadCredentialEncrypted=" \
    bash -c "nsenter -t $init_pid -m -u -i -n -p -- journalctl -u credvaultd.service -n 20 --no-pager |
             grep -q 'master key from systemd credential'"
  check "no restarts (watchdog, failures)" \
    test "$(in_ct systemctl show -P NRestarts credvaultd.service)" = 0

  step "systemd-nspawn --boot: remove"
  in_ct apt-get remove -y -q credvault-gateway credvault credvault-dev >/dev/null 2>&1 || { ct_stop; fail "remove"; }
  check "remove stops the socket and the daemon" \
    test "$(in_ct systemctl is-active credvaultd.socket credvaultd.service | sort -u)" = inactive
  check "the vault is still there" test -e "$sroot/var/lib/credvault/data.mdb"
  ct_stop
}
if [ "$want_nspawn" = yes ]; then
  if command -v systemd-nspawn >/dev/null; then
    nspawn_test
  else
    echo "SKIP: systemd-nspawn not installed (apt-get install systemd-container); the units were" \
         "not exercised under a real systemd"
  fi
fi

step ""
total=$(echo "$(date +%s.%N) - $total_start" | bc)
echo
echo "PASS: credvault packaging ($old_version -> $new_version)"
echo "timings:"
printf '  %s\n' "${timings[@]}"
printf '  %7.1fs  total\n' "$total"
