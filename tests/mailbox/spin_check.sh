#!/usr/bin/env bash
# isle — MIT licensed.
#
# Verifies the mailbox model with spin: for each configuration (2
# producers x 2 messages, 3 producers x 1, 2 x 2 with capacity 1) it builds
# pan in a temporary folder, runs an exhaustive safety search (assertions,
# and invalid end states: a consumer blocked for ever) and fails on any
# error spin reports, printing the counterexample.
#
# usage: spin_check.sh MODEL.pml [-DNAME[=VALUE]...]
#   With -D flags, checks that single configuration instead (for example
#   -DCAPACITY=1). Environment: SPIN (default spin), CC (default cc).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 MODEL.pml [-DNAME[=VALUE]...]" >&2
  exit 2
fi
model=$(realpath "$1")
shift
SPIN=${SPIN:-spin}
CC=${CC:-cc}

work=$(mktemp -d "${TMPDIR:-/tmp}/isle-spin.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ $# -gt 0 ]; then
  configs=("$*")
else
  configs=("" "-DTHREE" "-DCAPACITY=1")
fi

status=0
for defs in "${configs[@]}"; do
  name=${defs:-default}
  dir="$work/${name//[^A-Za-z0-9_]/_}"
  mkdir -p "$dir"
  cp "$model" "$dir/mailbox.pml"
  cd "$dir"
  # shellcheck disable=SC2086  # defs holds separate -D words
  if ! "$SPIN" $defs -a mailbox.pml >spin.log 2>&1; then
    echo "[$name] spin -a failed:"; cat spin.log
    status=1; continue
  fi
  # -DSAFETY: assertions and end states only; no cycle detection needed.
  if ! "$CC" -O2 -w -DSAFETY -DMEMLIM=2048 -o pan pan.c 2>cc.log; then
    echo "[$name] compiling pan.c failed:"; cat cc.log
    status=1; continue
  fi
  rc=0
  ./pan -m200000 >pan.log 2>&1 || rc=$?
  errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.log | tail -1)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.log | head -1)
  trans=$(sed -n 's/^ *\([0-9.e+]*\) transitions.*/\1/p' pan.log | head -1)
  secs=$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\).*/\1/p' pan.log | head -1)
  echo "[$name] states ${states:-?}, transitions ${trans:-?}," \
       "errors ${errors:-?}, ${secs:-?} s"
  if [ "$rc" -ne 0 ] || [ "${errors:-x}" != 0 ] ||
     grep -q -e 'max search depth too small' -e 'out of memory' \
             -e 'hash table is full' pan.log; then
    status=1
    echo "[$name] FAILED (pan exit $rc)"
    cat pan.log
    if [ -f mailbox.pml.trail ]; then
      echo "[$name] counterexample (spin -t -p), last steps:"
      # shellcheck disable=SC2086
      "$SPIN" $defs -t -p -g -l mailbox.pml 2>&1 | tail -n 80
    fi
  fi
  cd "$work"
done
exit $status
