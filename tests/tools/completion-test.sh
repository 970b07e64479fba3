#!/usr/bin/env bash
# Shell completion of credvaultctl (packaging/completion): commands, sub-commands, options
# and option values from the binary's --help, TYPE arguments from a real daemon. bash always;
# zsh when installed (scripts/deps.sh installs it), with compadd and _files stubbed.
#
# Usage: completion-test.sh SOURCE_ROOT CREDVAULTD CREDVAULTCTL
set -uo pipefail
src=$1 credvaultd=$2 ctl=$3
dir=$(mktemp -d /tmp/completion-test-XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

: >"$dir/empty.conf"
"$credvaultd" --config "$dir/empty.conf" --state-dir "$dir/state" --socket "$dir/s.sock" \
  --create-key --set password_ops_limit=1 --set password_mem_limit=8192 >"$dir/log" 2>&1 &
pid=$!
# Until its socket is there, 30 s at most (a loaded host can take seconds to start it).
for _ in $(seq 600); do
  [[ -S $dir/s.sock ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: credvaultd exited: $(cat "$dir/log")"; exit 1; }
  sleep 0.05
done
[[ -S $dir/s.sock ]] || { echo "FAIL: no socket after 30 s: $(cat "$dir/log")"; exit 1; }
"$ctl" --socket "$dir/s.sock" associate add me --uid "$(id -u)" >/dev/null || fail "associate add"
for t in imap smtp-relay; do
  "$ctl" --socket "$dir/s.sock" save "$t" --public x >/dev/null || fail "save $t"
done

# bash: prints COMPREPLY for the command line "$@" (the last word is being completed).
complete_bash() {
  bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    _credvaultctl
    printf "%s\n" "${COMPREPLY[@]}"' _ "$src/packaging/completion/credvaultctl.bash" "$@" |
    sort | tr '\n' ' '
}
expect() { # shell, wanted words (space separated), command line...
  local shell=$1 want=$2
  shift 2
  local got
  got=$(complete_"$shell" "$@")
  for w in $want; do
    [[ " $got " == *" $w "* ]] || fail "$shell: '$*' does not offer $w (offers: $got)"
  done
}
refuse() { # shell, unwanted word, command line...
  local shell=$1 bad=$2
  shift 2
  local got
  got=$(complete_"$shell" "$@")
  [[ " $got " == *" $bad "* ]] && fail "$shell: '$*' offers $bad"
  return 0
}

check_shell() {
  local sh=$1
  expect "$sh" "get list save update remove exec passwd associate token help" "$ctl" ""
  expect "$sh" "add list show set remove passwd" "$ctl" associate ""
  expect "$sh" "add list revoke" "$ctl" token ""
  expect "$sh" "--public --field --associate --format --json --socket" "$ctl" get imap --
  expect "$sh" "--inactive --active --secret-stdin --valid-to" "$ctl" update --
  expect "$sh" "--no-user-admin --no-uid" "$ctl" associate set --
  expect "$sh" "text json tsv" "$ctl" --format ""
  expect "$sh" "secret valid-to" "$ctl" get imap --field ""
  expect "$sh" "imap smtp-relay" "$ctl" --socket "$dir/s.sock" get ""
  expect "$sh" "imap smtp-relay" "$ctl" --socket="$dir/s.sock" update ""
  refuse "$sh" imap "$ctl" --socket "$dir/s.sock" get imap ""
  refuse "$sh" x "$ctl" get --public ""
  expect "$sh" "save update" "$ctl" help ""
}
check_shell bash

if command -v zsh >/dev/null; then
  complete_zsh() {
    zsh -f -c '
      compadd() { while [[ $# -gt 0 && $1 != -- ]]; do shift; done; shift; print -l -- "$@"; }
      _files() { print -- "<files>"; }
      f=$1; shift
      words=("$@"); CURRENT=$#
      source "$f"' _ "$src/packaging/completion/_credvaultctl" "$@" | sort | tr '\n' ' '
  }
  zsh -n "$src/packaging/completion/_credvaultctl" || fail "zsh: syntax"
  check_shell zsh
  expect zsh "<files>" "$ctl" backup ""
else
  echo "zsh not installed: zsh completion not checked"
fi
[[ $failed -eq 0 ]] && echo "ok: completion"
exit $failed
