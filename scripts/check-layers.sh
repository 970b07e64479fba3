#!/usr/bin/env bash
# Refuses includes that go against the layering in docs (STYLE.md, "Layout and direction"):
#
#   base      -> (nothing of ours)        ipc       -> base (generated credvault.capnp.h)
#   crypto    -> base                     daemon    -> ipc, core, crypto, store, base
#   store     -> base                     frontends -> ipc, base
#   core      -> crypto, store, base      tools     -> ipc, base
#
# base/ is the bottom layer (what every executable links, e.g. wipe-on-free), so every folder
# may use it and it may use nothing of ours. Nor may it pull in a library the lowest layers do
# without: base/ includes only the C and C++ standard libraries, POSIX/Linux headers and KJ's
# synchronous core (<kj/string.h>, <kj/debug.h>, ...) - never <kj/async*.h>, <kj/compat/...>,
# <capnp/...>, <sodium.h>, <lmdb.h>, <systemd/...> or <openssl/...> (BASE_REFUSED below). So
# a base/ piece links with kj alone and runs outside an event loop, in every layer.
#
# A folder may always include its own headers, and every folder may include the generated
# build configuration "credvault-config.h". Includes are attributed to a folder the way the
# compiler finds them: relative to the including file first ("secret.h", "../store/env.h"),
# then from the source root ("store/env.h", <store/env.h>). A bare name that exists only in
# another folder ("env.h" from frontends/) counts as that folder: it can only compile through
# an extra include path, which is the same violation.
#
# Usage: check-layers.sh [--stamp FILE] [SOURCE_ROOT]   exit 1 and print file:line per violation
#        check-layers.sh --self-test                    checks the checker on a scratch tree
set -euo pipefail

LAYERS=(base crypto store core ipc daemon frontends tools)
declare -A ALLOWED=(
  [base]=""
  [crypto]="base"
  [store]="base"
  [core]="crypto store base"
  [ipc]="base"
  [daemon]="ipc core crypto store base"
  [frontends]="ipc base"
  [tools]="ipc base"
)

# Angle includes base/ refuses (bash patterns over the header path).
BASE_REFUSED=('kj/async*' 'kj/compat/*' 'capnp/*' 'sodium.h' 'sodium/*' 'lmdb.h' 'systemd/*'
              'openssl/*')

base_refuses() {
  local p
  for p in "${BASE_REFUSED[@]}"; do
    # shellcheck disable=SC2053  # a pattern on purpose
    [[ "$1" == $p ]] && return 0
  done
  return 1
}

is_layer() {
  local l
  for l in "${LAYERS[@]}"; do [[ "$1" == "$l" ]] && return 0; done
  return 1
}

# Prints the top-level folder the header belongs to, "-" when it is not ours (system, KJ,
# build configuration), or "" for the including file's own folder.
# Args: root, including layer, including file's directory (relative), header, quoted|angle.
attribute() {
  local root=$1 layer=$2 dir=$3 header=$4 kind=$5 rel first
  if [[ "$header" == "credvault-config.h" ]]; then echo "-"; return; fi
  if [[ "${header##*/}" == "credvault.capnp.h" ]]; then
    # Generated into the build directory from ipc/credvault.capnp.
    [[ "$layer" == ipc ]] && echo "" || echo "ipc"
    return
  fi
  if [[ "$kind" == quoted && -e "$root/$dir/$header" ]]; then
    rel=$(realpath -m --relative-to="$root" "$root/$dir/$header")
    first=${rel%%/*}
    if [[ "$rel" != */* ]]; then echo "-"; return; fi     # a file in the source root
    [[ "$first" == "$layer" ]] && echo "" || echo "$first"
    return
  fi
  if [[ "$header" == */* ]]; then
    first=${header%%/*}
    if is_layer "$first" || { [[ "$kind" == quoted ]] && [[ -d "$root/$first" ]]; }; then
      [[ "$first" == "$layer" ]] && echo "" || echo "$first"
      return
    fi
    echo "-"
    return
  fi
  if [[ "$kind" == quoted ]]; then
    local l found=""
    for l in "${LAYERS[@]}"; do
      [[ "$l" != "$layer" && -e "$root/$l/$header" ]] && found="$found $l"
    done
    found=${found# }
    if [[ -n "$found" && "$found" != *" "* ]]; then echo "$found"; return; fi
  fi
  echo "-"
}

check_tree() {
  local root=$1 violations=0 layer file rel dir lineno text kind header target
  for layer in "${LAYERS[@]}"; do
    [[ -d "$root/$layer" ]] || continue
    while IFS= read -r -d '' file; do
      rel=${file#"$root"/}
      dir=$(dirname "$rel")
      while IFS= read -r line; do
        lineno=${line%%:*}
        text=${line#*:}
        if [[ "$text" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
          kind=quoted
        elif [[ "$text" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
          kind=angle
        else
          continue
        fi
        header=${BASH_REMATCH[1]}
        if [[ "$layer" == base && "$kind" == angle ]] && base_refuses "$header"; then
          echo "$rel:$lineno: base/ may not include <$header>; base/ may use: the standard" \
               "libraries, POSIX and KJ's synchronous core (not kj/async, capnp, sodium, lmdb," \
               "systemd, openssl)"
          violations=$((violations + 1))
          continue
        fi
        target=$(attribute "$root" "$layer" "$dir" "$header" "$kind")
        [[ -z "$target" || "$target" == "-" ]] && continue
        if [[ " ${ALLOWED[$layer]} " != *" $target "* ]]; then
          local may=${ALLOWED[$layer]// /, }
          echo "$rel:$lineno: $layer/ may not include \"$header\" (from $target/); $layer/ may use: ${may:-nothing of ours}"
          violations=$((violations + 1))
        fi
      done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$file" || true)
    done < <(find "$root/$layer" -type f \( -name '*.h' -o -name '*.c++' -o -name '*.cc' \
               -o -name '*.cpp' -o -name '*.hpp' -o -name '*.hh' \) -print0 | sort -z)
  done
  if [[ $violations -gt 0 ]]; then
    echo "check-layers: $violations include(s) break the layering (see STYLE.md)" >&2
    return 1
  fi
  return 0
}

self_test() {
  local out rc=0 failed=0
  SELF_TEST_DIR=$(mktemp -d /tmp/check-layers-XXXXXX)
  trap 'rm -rf "$SELF_TEST_DIR"' EXIT
  local tmp=$SELF_TEST_DIR
  mkdir -p "$tmp"/{base,crypto,store,core,ipc,daemon,frontends,tools,tests}
  touch "$tmp/base/wipe.h" "$tmp/crypto/secret.h" "$tmp/store/env.h" "$tmp/core/vault.h" "$tmp/ipc/client.h" \
        "$tmp/tests/helper.h" "$tmp/ipc/credvault.capnp"
  # Allowed.
  printf '#include "secret.h"\n#include <sodium.h>\n#include <kj/debug.h>\n' > "$tmp/crypto/aead.c++"
  printf '#include "crypto/secret.h"\n#include "store/env.h"\n#include "credvault-config.h"\n' > "$tmp/core/vault.c++"
  printf '#include "credvault.capnp.h"\n#include "ipc/client.h"\n' > "$tmp/ipc/client.c++"
  printf '#include "ipc/credvault.capnp.h"\n#include "core/vault.h"\n#include "crypto/secret.h"\n#include "store/env.h"\n' > "$tmp/daemon/server.c++"
  printf '#include "credvault.capnp.h"\n#include "ipc/client.h"\n#include "credvault-config.h"\n// #include "store/env.h"\n' > "$tmp/frontends/ok.c++"
  cp "$tmp/frontends/ok.c++" "$tmp/tools/ctl.c++"
  printf '#include "base/wipe.h"\n' > "$tmp/frontends/base.c++"
  printf '#include "../base/wipe.h"\n' > "$tmp/crypto/base.c++"
  printf '#include "wipe.h"\n#include <kj/common.h>\n#include <kj/string.h>\n#include <arpa/inet.h>\n' > "$tmp/base/wipe.c++"
  if ! out=$(check_tree "$tmp" 2>&1); then
    echo "self-test: a tree without violations was refused:"; echo "$out"; return 1
  fi
  # Violations, one per line below.
  printf '#include "ipc/client.h"\n#include "store/env.h"\n' > "$tmp/frontends/bad.c++"      # :2
  printf '#include "../core/vault.h"\n' > "$tmp/tools/bad.c++"                               # :1
  printf '#include <kj/common.h>\n  #  include <crypto/secret.h>\n' > "$tmp/store/bad.h"     # :2
  printf '#include "secret.h"\n' > "$tmp/frontends/bare.c++"                                 # :1
  printf '#include "core/vault.h"\n' > "$tmp/core/fine.c++"
  printf '#include "core/vault.h"\n' > "$tmp/crypto/bad.c++"                                 # :1
  printf '#include "credvault.capnp.h"\n' > "$tmp/core/bad.c++"                             # :1
  printf '#include "tests/helper.h"\n' > "$tmp/daemon/bad.c++"                               # :1
  printf '#include "crypto/secret.h"\n' > "$tmp/base/bad.c++"                               # :1
  printf '#include <kj/string.h>\n#include <kj/async-io.h>\n' > "$tmp/base/async.h"        # :2
  printf '#include <capnp/message.h>\n#include <sodium.h>\n' > "$tmp/base/libs.c++"        # :1 :2
  set +e
  out=$(check_tree "$tmp" 2>/dev/null)
  rc=$?
  set -e
  local expect
  for expect in frontends/bad.c++:2: tools/bad.c++:1: store/bad.h:2: frontends/bare.c++:1: \
                crypto/bad.c++:1: core/bad.c++:1: daemon/bad.c++:1: base/bad.c++:1: \
                base/async.h:2: base/libs.c++:1: base/libs.c++:2:; do
    if ! grep -q "^$expect" <<<"$out"; then
      echo "self-test: violation $expect was not reported"; failed=1
    fi
  done
  if [[ $(grep -c . <<<"$out") -ne 11 ]]; then
    echo "self-test: expected 11 violations, got:"; echo "$out"; failed=1
  fi
  if [[ $rc -eq 0 ]]; then echo "self-test: violations did not fail the check"; failed=1; fi
  [[ $failed -eq 0 ]] && echo "check-layers self-test passed"
  return $failed
}

stamp=""
case "${1:-}" in
  --self-test) self_test; exit $? ;;
  --stamp) stamp=$2; shift 2 ;;
esac
root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
root=$(cd "$root" && pwd)
check_tree "$root"
if [[ -n "$stamp" ]]; then : > "$stamp"; fi
