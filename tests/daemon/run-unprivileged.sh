#!/usr/bin/env bash
# Runs each gtest binary given as the user nobody, to prove that the daemon layer's in-process
# tests need no root (the suite itself runs as root in CI, where a test could come to rely on
# it unnoticed). As another user already, runs them as that user. TMPDIR is a fresh directory
# nobody owns; the environment is reset (but for the sanitizers' options), so a test cannot
# lean on the caller's either.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  for t in "$@"; do "$t" --gtest_brief=1; done
  exit 0
fi
tmp=$(mktemp -d /tmp/credvault-unprivileged.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chown nobody:nogroup "$tmp"
[[ $(setpriv --reuid=nobody --regid=nogroup --clear-groups id -u) -ne 0 ]] || exit 1
for t in "$@"; do
  if ! setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env \
      env TMPDIR="$tmp" ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
      LSAN_OPTIONS="${LSAN_OPTIONS:-}" "$t" --gtest_brief=1; then
    echo "run-unprivileged: $(basename "$t") failed as nobody" >&2
    exit 1
  fi
done
