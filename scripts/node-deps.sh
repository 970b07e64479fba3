#!/usr/bin/env bash
# Installs the npm packages the client tests drive (tests/frontends/clients/package.json:
# node-soap, Ajv + ajv-formats), pinned by package-lock.json, into a cache directory outside
# the source tree and the build directories, so every build (normal, ASan) shares one copy:
#   $CREDVAULT_NODE_CLIENTS, else ${XDG_CACHE_HOME:-$HOME/.cache}/credvault/node-clients
# (tests/frontends/clientlib.py looks in the same place). Does nothing when that copy already
# matches the lock file. When npm or the registry cannot be reached it says so and returns 0:
# the tests that need these packages then skip (exit 77) with a message naming this script.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=tests/frontends/clients
DEST=${CREDVAULT_NODE_CLIENTS:-${XDG_CACHE_HOME:-$HOME/.cache}/credvault/node-clients}
if ! command -v npm >/dev/null; then
  echo "node-deps: npm is not installed (scripts/deps.sh installs it); client tests will skip"
  exit 0
fi
stamp=$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -f "$DEST/.stamp" ] && [ "$(cat "$DEST/.stamp")" = "$stamp" ] && [ -d "$DEST/node_modules" ]; then
  exit 0
fi
mkdir -p "$DEST"
rm -rf "$DEST/node_modules" "$DEST/.stamp"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
if (cd "$DEST" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
  echo "$stamp" >"$DEST/.stamp"
  echo "node-deps: installed $(cd "$DEST" && ls node_modules | wc -l) packages into $DEST"
else
  echo "node-deps: npm ci failed (is the npm registry reachable?); client tests will skip." \
       "See $DEST/npm.log"
  rm -rf "$DEST/node_modules"
fi
