#!/usr/bin/env bash
# isle — MIT licensed.
#
# Installs what isle needs to build, test and benchmark on Debian 12, and
# only what is missing; running it again changes nothing. Needs root when
# something is missing; otherwise it prints what to install and fails.
set -euo pipefail

# Build and test.
packages=(build-essential cmake pkg-config git libuv1-dev libck-dev
  libcmocka-dev valgrind spin clang clang-format python3)
# isle-prof (and the profile tests) parse JSON with jansson.
packages+=(libjansson-dev)
# The sample servers' tests (tests/servers) talk to them with real clients.
packages+=(curl redis-tools wrk) # wrk: the http soak (ctest -L soak)
# Benchmark peers: mimalloc, jemalloc, tcmalloc; CAF for the actors suite.
packages+=(libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libcaf-dev)

if ! command -v dpkg >/dev/null 2>&1; then
  echo "deps: not a Debian system; install the equivalents of:" >&2
  echo "  ${packages[*]}" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  # dpkg -s also knows removed packages that left config files behind.
  if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing: ${missing[*]}" >&2
  echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
log=$(mktemp "${TMPDIR:-/tmp}/isle-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "deps: apt-get failed" >&2
  exit 1
fi
echo "deps: installed ${#missing[@]} packages"
