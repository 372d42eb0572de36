#!/usr/bin/env bash
# isle — MIT licensed.
#
# Checks the export list of libisle.so: every defined dynamic symbol is a
# public isle_* name (not an isle__* internal, not another library's name
# carried along), and every function or object declared ISLE_API in the
# public headers is among them.
#
# Usage: symbols.sh LIBISLE_SO INCLUDE_DIR [NM]
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 LIBISLE_SO INCLUDE_DIR [NM]" >&2
  exit 2
fi
lib=$1
include=$2
nm=${3:-nm}
[ -n "$nm" ] || nm="nm"

fail=0

# Defined dynamic symbols, one name a line. (GNU ld and gcc 12 add none of
# their own, no _init, _fini or _edata, to libisle.so's dynamic table; with
# -fsanitize=address gcc adds __odr_asan.NAME beside each exported object.)
exported=$("$nm" -D --defined-only "$lib" | awk '{ print $NF }' |
  sed 's/@.*//' | sort -u)
[ -n "$exported" ] || { echo "api_symbols: $lib exports nothing" >&2; exit 1; }

while read -r sym; do
  case $sym in
  isle__*)
    echo "api_symbols: internal symbol exported: $sym" >&2
    fail=1
    ;;
  isle_*) ;;
  __odr_asan.isle_*) ;; # gcc's ASan: the ODR indicator of an exported object
  *)
    echo "api_symbols: non-isle symbol exported: $sym" >&2
    fail=1
    ;;
  esac
done <<<"$exported"

# Names declared ISLE_API in the public headers: in each declaration (it
# may span lines), the first isle_* identifier followed by '(' (a
# function), ';' or '[' (an object); the attribute macros before it are
# ISLE_* and the type names are followed by other things.
declared=$(cat "$include"/isle.h "$include"/isle/*.h |
  awk '/^ISLE_API/ { decl = ""; on = 1 }
       on { decl = decl " " $0
            if ($0 ~ /[;{]/) {
              on = 0
              if (match(decl, /isle_[A-Za-z0-9_]+[ \t]*[(;[]/)) {
                name = substr(decl, RSTART, RLENGTH)
                sub(/[ \t]*[(;[]$/, "", name)
                print name
              }
            } }' |
  sort -u)
[ -n "$declared" ] || { echo "api_symbols: no ISLE_API declarations in $include" >&2; exit 1; }

missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -n "$missing" ]; then
  echo "api_symbols: declared ISLE_API but not exported:" \
    "$(echo "$missing" | tr '\n' ' ')" >&2
  fail=1
fi

if [ $fail -ne 0 ]; then
  exit 1
fi
echo "api_symbols: $(echo "$exported" | wc -l) symbols, all public isle_*;" \
  "$(echo "$declared" | wc -l) ISLE_API declarations, all exported"
