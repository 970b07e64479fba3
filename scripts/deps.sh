#!/usr/bin/env bash
# Installs the Debian 12 packages credvault needs, if any is missing.
#   scripts/deps.sh --run         to build and run (./run.sh)
#   scripts/deps.sh               to build, run and test (./test.sh): adds GoogleTest, curl,
#                                 openssl (test certificates), zeep, wrk, clang-format,
#                                 systemd, the third-party SOAP clients (PHP, node-soap)
#   scripts/deps.sh --packaging   the above plus what builds the .deb/.rpm
set -euo pipefail
RUN_PKGS=(meson ninja-build g++ pkg-config capnproto libcapnp-dev libssl-dev liblmdb-dev libpq-dev
          libsodium-dev libsystemd-dev)
# php-cli php-soap libxml2-utils python3-xmlschema: the third-party SOAP client and WSDL
# tests (python3-xmlschema ships the XML Schema for schemas that xmllint checks against).
# zsh: the credvaultctl completion test. postgresql-15: the PostgreSQL backend's tests start
# a throw-away server of their own (tests/support/postgres.h).
TEST_PKGS=(libgtest-dev curl openssl python3-zeep systemd wrk clang-format
           php-cli php-soap libxml2-utils python3-xmlschema zsh postgresql-15)
PKGS=("${RUN_PKGS[@]}")
if [ "${1:-}" != "--run" ]; then
  PKGS+=("${TEST_PKGS[@]}")
  # node-soap and Ajv need Node.js and npm; a Node.js from elsewhere (e.g. one that bundles
  # npm) is used as it is, since Debian's npm would conflict with it.
  command -v node >/dev/null || PKGS+=(nodejs)
  command -v npm >/dev/null || PKGS+=(npm)
fi
[ "${1:-}" = "--packaging" ] && PKGS+=(debhelper devscripts dpkg-dev lintian rpm fakeroot
      debootstrap systemd-container)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
