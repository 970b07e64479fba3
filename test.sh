#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite, then the sanitizer build,
# then each libFuzzer target for a short while (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/deps.sh
./scripts/node-deps.sh  # node-soap and Ajv for the client tests, into a cache directory
BUILD=${BUILD_DIR:-build}
[ -d "$BUILD" ] || meson setup "$BUILD"
# A build directory ./run.sh made has the tests turned off.
meson configure "$BUILD" -Dtests=true >/dev/null
ninja -C "$BUILD"
meson test -C "$BUILD" --print-errorlogs --num-processes 2
if [ "${CREDVAULT_SKIP_SANITIZE:-0}" != "1" ]; then
  ASAN=${BUILD}-asan
  [ -d "$ASAN" ] || meson setup "$ASAN" -Db_sanitize=address,undefined -Db_lundef=false \
      -Dbuildtype=debug
  ninja -C "$ASAN"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C "$ASAN" --print-errorlogs --num-processes 2 --no-suite slow
fi
if [ "${CREDVAULT_SKIP_FUZZ:-0}" != "1" ]; then
  ./scripts/fuzz.sh "${CREDVAULT_FUZZ_SECONDS:-10}"
fi
