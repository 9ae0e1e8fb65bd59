#!/usr/bin/env bash
# Checks that every tracked C++ source and header is formatted as the repo's
# .clang-format says, with Debian 12's clang-format 14 (another version
# formats differently). Changes nothing; lists the files that differ and
# exits 1 if there are any. Fix with:
#   clang-format-14 -i $(bash scripts/check-format.sh --list)
# Generated files are not tracked (protobuf output, api/openapi.cpp from
# openapi.cpp.in), so `git ls-files` never sees them.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
command -v "$CLANG_FORMAT" >/dev/null || {
  echo "check-format.sh: $CLANG_FORMAT not found (bash scripts/install-deps.sh)" >&2
  exit 2
}
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc')
# One process for all files; each violation is reported as
# "FILE:LINE:COL: error: code should be clang-formatted".
rc=0
out=$("$CLANG_FORMAT" --dry-run --Werror "${files[@]}" 2>&1) || rc=$?
mapfile -t bad < <(printf '%s\n' "$out" |
                   sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' |
                   sort -u)
if [ "$rc" -ne 0 ] && [ ${#bad[@]} -eq 0 ]; then
  printf '%s\n' "$out" >&2
  echo "check-format.sh: $CLANG_FORMAT failed (exit $rc)" >&2
  exit 2
fi
if [ "${1:-}" = --list ]; then
  printf '%s\n' "${bad[@]}"
  exit 0
fi
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format.sh: ${#bad[@]} of ${#files[@]} files are not clang-formatted:"
  printf '  %s\n' "${bad[@]}"
  echo "fix: $CLANG_FORMAT -i \$(bash scripts/check-format.sh --list)"
  exit 1
fi
echo "check-format.sh: ${#files[@]} files formatted"
