#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (docs/fuzzing.md) for a fixed time each.
#
# Installs clang and the libFuzzer runtime when missing (Debian: clang, libclang-rt-14-dev),
# sets up the fuzz build directory (clang, -Dfuzz=true, ASan + UBSan) on first use, builds only
# the fuzz targets, and runs each on a temporary copy of its checked-in corpus (which is never
# grown) with its dictionary. Exits 1 when a target crashes, leaks, times out or runs out of
# memory, naming the input that reproduces it; the temporary directory is then kept.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 20 s, every target)
# FUZZ_BUILD_DIR selects the build directory (default: build-fuzz in the source root).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
[[ $# -gt 0 ]] && shift
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz.sh: SECONDS must be a positive integer" >&2; exit 2; }
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
ALL_TARGETS=(http-head xml json form soap-envelope rest-binding stored-record validate credentials-parsing daemon-config
  daemon-rpc)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [[ -f "$root/tests/fuzz/$t.c++" ]] || { echo "fuzz.sh: no target $t (have: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

# ---- toolchain: clang++ that can link -fsanitize=fuzzer,address,undefined
toolchain_ok() {
  local probe
  probe=$(mktemp -d /tmp/credvault-fuzz-probe.XXXXXX)
  printf '#include <stddef.h>\n#include <stdint.h>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
    > "$probe/p.c++"
  local rc=0
  clang++ -fsanitize=fuzzer,address,undefined "$probe/p.c++" -o "$probe/p" >/dev/null 2>&1 || rc=1
  rm -rf "$probe"
  return $rc
}
if ! command -v clang++ >/dev/null || ! toolchain_ok; then
  echo "fuzz.sh: installing clang and the libFuzzer runtime" >&2
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    clang libclang-rt-14-dev llvm
  toolchain_ok || { echo "fuzz.sh: clang++ still cannot link -fsanitize=fuzzer" >&2; exit 2; }
fi

# ---- build
if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang CXX=clang++ meson setup "$build" "$root" -Dfuzz=true -Dtests=false \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
if ! out=$(ninja -C "$build" "${targets[@]/#/tests/fuzz/}" 2>&1); then
  echo "$out" >&2
  echo "fuzz.sh: build failed" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  [[ -x "$build/tests/fuzz/$t" ]] || { echo "fuzz.sh: $t was not built" >&2; exit 2; }
done

# ---- run
work=$(mktemp -d /tmp/credvault-fuzz.XXXXXX)
failed=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
printf '%-14s %10s %10s %8s %8s\n' target runs exec/s cov ft
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$work/$t/corpus/"
  dict=()
  [[ -f "$root/tests/fuzz/$t.dict" ]] && dict=("-dict=$root/tests/fuzz/$t.dict")
  rc=0
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    "${dict[@]}" -artifact_prefix="$work/$t/artifacts/" -print_final_stats=1 \
    "$work/$t/corpus" >"$work/$t/log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$work/$t/log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  printf '%-14s %10s %10s %8s %8s\n' "$t" "${runs:--}" "${speed:--}" "${cov:--}" "${ft:--}"
  artifacts=$(find "$work/$t/artifacts" -type f | sort)
  if [[ $rc -ne 0 || -n "$artifacts" ]]; then
    failed=1
    echo "fuzz.sh: $t FAILED (exit $rc); log: $work/$t/log" >&2
    grep -E 'ERROR:|SUMMARY:|runtime error|exception escaped|Test unit written' "$work/$t/log" \
      | head -10 >&2 || true
    for a in $artifacts; do
      echo "fuzz.sh: reproduce with: $build/tests/fuzz/$t $a" >&2
    done
  fi
done

if [[ $failed -ne 0 ]]; then
  echo "fuzz.sh: failures found; inputs and logs kept in $work" >&2
  exit 1
fi
rm -rf "$work"
echo "fuzz.sh: ${#targets[@]} target(s), ${seconds}s each: no crash, leak or timeout"
