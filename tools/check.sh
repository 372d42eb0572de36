#!/usr/bin/env bash
# isle — MIT licensed.
#
# Builds and tests isle the way CI does: for each preset (release, asan,
# tsan, chaos; or the ones named as arguments) configure, build and run
# every test. The chaos build runs the suite once per seed of
# ISLE_CHAOS_SEEDS (default "1 2 3"); a failure names its seed, and
# `ISLE_CHAOS_SEED=N ctest --preset chaos -R TEST` replays it.
# Stops at the first failure with a non-zero status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release asan tsan chaos)
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

n=0
for p in "${presets[@]}"; do
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
