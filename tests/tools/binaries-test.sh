#!/usr/bin/env bash
# --version and --help of every binary of the suite: each prints what it should on stdout,
# nothing on stderr, and exits 0. Under the ASan build a freed or out-of-bounds read while
# printing (credvaultd --version once printed freed memory) fails the run.
#
# Usage: binaries-test.sh VERSION NAME=PATH...
set -uo pipefail
version=$1
shift
failed=0
fail() { echo "FAIL: $*"; failed=1; }
for spec in "$@"; do
  name=${spec%%=*}
  path=${spec#*=}
  out=$("$path" --version 2>/tmp/binaries-test-err.$$); rc=$?
  err=$(cat /tmp/binaries-test-err.$$)
  [[ $rc -eq 0 ]] || fail "$name --version exited $rc: $err"
  [[ "$out" == "$name $version" ]] || fail "$name --version printed '$out', want '$name $version'"
  [[ -z "$err" ]] || fail "$name --version wrote to stderr: $err"
  out=$("$path" --help 2>/tmp/binaries-test-err.$$); rc=$?
  err=$(cat /tmp/binaries-test-err.$$)
  [[ $rc -eq 0 ]] || fail "$name --help exited $rc: $err"
  [[ "$out" =~ ^Usage:\ ([^ ]*/)?$name\  ]] || fail "$name --help does not start with a usage line: $out"
  [[ "$out" == *"--version"* ]] || fail "$name --help does not mention --version"
  [[ -z "$err" ]] || fail "$name --help wrote to stderr: $err"
  # An unknown option is a usage error: exit 1 or 2 (credvaultctl), message on stderr only.
  out=$("$path" --no-such-option 2>/tmp/binaries-test-err.$$); rc=$?
  err=$(cat /tmp/binaries-test-err.$$)
  [[ $rc -eq 1 || $rc -eq 2 ]] || fail "$name --no-such-option exited $rc"
  [[ -z "$out" ]] || fail "$name --no-such-option wrote to stdout: $out"
  [[ "$err" == *"no-such-option"* ]] || fail "$name --no-such-option did not name the option: $err"
  [[ $failed -eq 0 ]] && echo "ok: $name"
done
rm -f /tmp/binaries-test-err.$$
exit $failed
