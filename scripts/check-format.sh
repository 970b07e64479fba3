#!/usr/bin/env bash
# Checks that our C++ sources (*.h, *.c++) match .clang-format, and names each file that
# does not. Generated code lives in build directories and is not checked.
#
# Usage: check-format.sh [SOURCE_ROOT]          exit 1 when a file differs
#        check-format.sh --fix [SOURCE_ROOT]    reformat those files in place
# CLANG_FORMAT selects the binary (default: clang-format).
set -euo pipefail

fix=0
if [[ "${1:-}" == "--fix" ]]; then fix=1; shift; fi
root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$root"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null || { echo "check-format: $CLANG_FORMAT not found" >&2; exit 2; }

FOLDERS=(base crypto store core ipc daemon frontends tools tests bench)
existing=()
for f in "${FOLDERS[@]}"; do [[ -d "$f" ]] && existing+=("$f"); done
[[ ${#existing[@]} -gt 0 ]] || { echo "check-format: no sources under $root" >&2; exit 2; }

differ=0
total=0
while IFS= read -r -d '' file; do
  total=$((total + 1))
  if ! "$CLANG_FORMAT" --style=file --dry-run -Werror "$file" >/dev/null 2>&1; then
    if [[ $fix -eq 1 ]]; then
      "$CLANG_FORMAT" --style=file -i "$file"
      echo "reformatted: $file"
    else
      echo "needs formatting: $file"
    fi
    differ=$((differ + 1))
  fi
done < <(find "${existing[@]}" -type f \( -name '*.h' -o -name '*.c++' \) -print0 | sort -z)

if [[ $differ -gt 0 && $fix -eq 0 ]]; then
  echo "check-format: $differ of $total files differ from .clang-format" \
       "(see: $CLANG_FORMAT --style=file $root/<file> | diff $root/<file> -," \
       "or run $0 --fix)" >&2
  exit 1
fi
echo "check-format: $total files checked"
