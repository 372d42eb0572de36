#!/usr/bin/env bash
# isle — MIT licensed.
#
# Builds and tests isle the way CI does: first the format check (every C
# and C++ file as .clang-format says: `tools/check.sh format` alone, and
# `clang-format -i FILE` fixes one), then for each preset (release, asan,
# tsan, chaos; or the ones named as arguments) configure, build and run
# every test. The chaos build runs the suite once per seed of
# ISLE_CHAOS_SEEDS (default "1 2 3"); a failure names its seed, and
# `ISLE_CHAOS_SEED=N ctest --preset chaos -R TEST` replays it.
# Stops at the first failure with a non-zero status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(format release asan tsan chaos)
read -r -a chaos_seeds <<<"${ISLE_CHAOS_SEEDS:-1 2 3}"

# Runs the tests of preset $1: once, or for chaos once per seed.
run_tests() {
  if [ "$1" != chaos ]; then
    ctest --preset "$1"
    return
  fi
  for seed in "${chaos_seeds[@]}"; do
    echo "=== check: chaos seed $seed"
    if ! ISLE_CHAOS_SEED=$seed ctest --preset chaos; then
      echo "check: chaos FAILED with ISLE_CHAOS_SEED=$seed" >&2
      return 1
    fi
  done
}

# The files clang-format would change, one per line; none is the pass.
format_check() {
  local bad=0 f
  while IFS= read -r f; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "check: not formatted: $f (clang-format -i $f)" >&2
      bad=1
    fi
  done < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')
  return $bad
}

n=0
for p in "${presets[@]}"; do
  if [ "$p" = format ]; then
    echo "=== check: format"
    format_check || { echo "check: format FAILED" >&2; exit 1; }
    continue
  fi
  echo "=== check: $p"
  start=$SECONDS
  if ! { cmake --preset "$p" && cmake --build --preset "$p" -j2 &&
    run_tests "$p"; }; then
    echo "check: $p FAILED after $n builds passed" >&2
    exit 1
  fi
  n=$((n + 1))
  echo "=== check: $p passed in $((SECONDS - start)) s"
done
echo "check: $n builds passed"
