#!/usr/bin/env bash
# Installs the Debian 12 packages credvault needs to build, test and run, if any is missing.
set -euo pipefail
# php-cli php-soap libxml2-utils python3-xmlschema: the third-party SOAP client and WSDL
# tests (python3-xmlschema ships the XML Schema for schemas that xmllint checks against).
PKGS=(meson ninja-build g++ pkg-config capnproto libcapnp-dev liblmdb-dev libsodium-dev
      libsystemd-dev libgtest-dev curl python3-zeep systemd wrk clang-format
      php-cli php-soap libxml2-utils python3-xmlschema)
# node-soap and Ajv need Node.js and npm; a Node.js from elsewhere (e.g. one that bundles
# npm) is used as it is, since Debian's npm would conflict with it.
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
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
