#!/usr/bin/env bash
# isle — MIT licensed.
#
# Install test: install a configured and built isle into a temporary prefix,
# then build tests/install/consumer.c against it
#   (a) with CMake and find_package(isle), once per library, and
#   (b) with cc and pkg-config (isle.pc),
# run each program and check that it prints "ok".
#
# Usage: run.sh BUILD_DIR SOURCE_DIR LIBDIR [CONFIG]
#   LIBDIR is CMAKE_INSTALL_LIBDIR relative to the prefix (lib, or
#   lib/x86_64-linux-gnu on Debian when the prefix is /usr).
# CC picks the compiler (default cc).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR LIBDIR [CONFIG]" >&2
  exit 2
fi
build=$1
src=$2
libdir=$3
config=${4:-}
cc=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/isle-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() {
  echo "install_consumer: $*" >&2
  exit 1
}

expect_ok() {
  local out
  out=$("$@") || fail "$* exited with status $?"
  [ "$out" = ok ] || fail "$* printed '$out', not 'ok'"
  echo "  $*: ok"
}

echo "install into $prefix"
if ! cmake --install "$build" --prefix "$prefix" ${config:+--config "$config"} \
  >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  fail "cmake --install failed"
fi

[ -f "$prefix/include/isle.h" ] || fail "include/isle.h not installed"
[ -f "$prefix/$libdir/pkgconfig/isle.pc" ] || fail "$libdir/pkgconfig/isle.pc not installed"
[ -f "$prefix/$libdir/cmake/isle/isleConfig.cmake" ] || fail "isleConfig.cmake not installed"
internal=$(find "$prefix/include" -name '*.h' ! -path "$prefix/include/isle.h" \
  ! -path "$prefix/include/isle/*.h")
[ -z "$internal" ] || fail "headers outside the public API installed: $internal"

echo "(a) CMake, find_package(isle)"
if ! { cmake -S "$src/tests/install" -B "$tmp/consumer-build" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_BUILD_TYPE=Release &&
  cmake --build "$tmp/consumer-build"; } >"$tmp/consumer.log" 2>&1; then
  cat "$tmp/consumer.log" >&2
  fail "CMake consumer build failed"
fi
expect_ok "$tmp/consumer-build/consumer"
expect_ok "$tmp/consumer-build/consumer_static"

echo "(b) cc + pkg-config"
flags=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --cflags --libs isle) ||
  fail "pkg-config --cflags --libs isle failed"
# shellcheck disable=SC2086 # flags are words
"$cc" -o "$tmp/consumer-pc" "$src/tests/install/consumer.c" $flags \
  -Wl,-rpath,"$prefix/$libdir" || fail "pkg-config consumer build failed"
expect_ok "$tmp/consumer-pc"

echo "install_consumer: passed"
