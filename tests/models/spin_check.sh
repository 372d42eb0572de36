#!/usr/bin/env bash
# isle — MIT licensed.
#
# Checks one configuration of a Promela model with spin: generates the
# verifier (spin -a) in a temporary folder, compiles it and runs an
# exhaustive search, then reports states, depth and time on one line.
#
#   Safety (default): pan compiled with -DSAFETY, checking assertions and
#   invalid end states (a thread blocked for ever); the search must be
#   complete: "max search depth too small" or running out of memory fails.
#   --live: pan compiled without -DSAFETY and run with -a -f, looking for
#   acceptance cycles of the model's ltl formula under weak fairness.
#   --collapse: pan with -DCOLLAPSE, a lossless compression of the stored
#   states (about half the memory, up to twice the time): for the larger
#   configurations, so that two checks running at once fit.
#   --expect-error REGEX: the configuration is a known-bad variant (or a
#   witness); the check passes only when pan finds an error whose line
#   matches REGEX (extended; e.g. the flag the failed assertion tests), so
#   a model that has silently lost its power to fail, or fails for another
#   reason, is caught. The end of the counterexample is printed either way.
#
# usage: spin_check.sh [--live] [--collapse] [--expect-error REGEX]
#                      MODEL.pml [-DNAME[=VALUE]...]
# Environment: SPIN (default spin), CC (default cc), ISLE_SPIN_DEPTH (pan's
# depth limit, default 200000), ISLE_SPIN_MEMLIM (MiB, default 4096).
set -euo pipefail

live=0
collapse=0
expect=""
while [ $# -gt 0 ]; do
  case "$1" in
    --live) live=1; shift ;;
    --collapse) collapse=1; shift ;;
    --expect-error) expect=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "spin_check.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 1 ]; then
  echo "usage: $0 [--live] [--collapse] [--expect-error REGEX]" \
       "MODEL.pml [-DNAME[=VALUE]...]" >&2
  exit 2
fi
model=$(realpath "$1")
shift
defs=("$@")
SPIN=${SPIN:-spin}
CC=${CC:-cc}
depth=${ISLE_SPIN_DEPTH:-200000}
memlim=${ISLE_SPIN_MEMLIM:-4096}
name="$(basename "$model" .pml)${defs[*]:+ ${defs[*]}}${expect:+ (must fail)}"

if ! command -v "$SPIN" >/dev/null 2>&1; then
  echo "[$name] spin ($SPIN) not found: tools/deps.sh installs it" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/isle-spin.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$model" "$work/model.pml"
cd "$work"

if ! "$SPIN" "${defs[@]}" -a model.pml >spin.log 2>&1; then
  echo "[$name] spin -a failed:"
  cat spin.log
  exit 1
fi
ccflags=(-O2 -w "-DMEMLIM=$memlim")
[ "$collapse" = 0 ] || ccflags+=(-DCOLLAPSE)
panflags=("-m$depth")
if [ "$live" = 1 ]; then
  panflags+=(-a -f)
else
  ccflags+=(-DSAFETY)
fi
if ! "$CC" "${ccflags[@]}" -o pan pan.c 2>cc.log; then
  echo "[$name] compiling pan.c failed:"
  cat cc.log
  exit 1
fi
rc=0
start=$(date +%s.%N)
./pan "${panflags[@]}" >pan.log 2>&1 || rc=$?
wall=$(echo "$start $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}')

errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.log | tail -1)
states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.log | head -1)
reached=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' pan.log | head -1)
mem=$(sed -n 's/^ *\([0-9.]*\)\s*total actual memory usage.*/\1/p' pan.log | head -1)
echo "[$name] states ${states:-?}, depth ${reached:-?} (limit $depth)," \
     "memory ${mem:-?} MB, errors ${errors:-?}, ${wall} s"

incomplete=0
if grep -q -e 'max search depth too small' -e 'out of memory' \
        -e 'hash table is full' -e 'MEMLIM bound' pan.log; then
  incomplete=1
fi

trail() {
  if [ -f model.pml.trail ]; then
    echo "[$name] counterexample (spin -t), last steps:"
    # The steps only (not the variable dumps), and the error itself.
    "$SPIN" "${defs[@]}" -t -p model.pml 2>&1 |
      grep -E -e '^ *[0-9]+:' -e 'violated|CYCLE|invalid end' |
      sed -e 's/(state [0-9]*)//' | tail -n 60
  fi
}

if [ -n "$expect" ]; then
  # Only pan's error lines ("pan:1: assertion violated ..."): the rest of
  # its report quotes the model's statements.
  found=$(grep -E '^pan:[0-9]+:' pan.log | grep -E -m1 -- "$expect" || true)
  if [ "${errors:-0}" -gt 0 ] && [ -n "$found" ]; then
    echo "[$name] found, as expected: $found"
    trail
    exit 0
  fi
  echo "[$name] FAILED: expected an error matching '$expect'" \
       "(pan exit $rc); this variant must produce a counterexample"
  grep -v '^Depth=' pan.log
  trail
  exit 1
fi

if [ "$rc" -ne 0 ] || [ "${errors:-x}" != 0 ] || [ "$incomplete" = 1 ]; then
  echo "[$name] FAILED (pan exit $rc)"
  grep -v '^Depth=' pan.log
  trail
  exit 1
fi
exit 0
