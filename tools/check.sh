#!/usr/bin/env bash
# isle — MIT licensed.
#
# Builds and tests isle the way CI does: for each preset (release, asan,
# tsan; or the ones named as arguments) configure, build and run every test.
# Stops at the first failure with a non-zero status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release asan tsan)

n=0
for p in "${presets[@]}"; do
  echo "=== check: $p"
  start=$SECONDS
  if ! { cmake --preset "$p" && cmake --build --preset "$p" -j2 &&
    ctest --preset "$p"; }; then
    echo "check: $p FAILED after $n builds passed" >&2
    exit 1
  fi
  n=$((n + 1))
  echo "=== check: $p passed in $((SECONDS - start)) s"
done
echo "check: $n builds passed"
