#!/usr/bin/env bash
# isle — MIT licensed.
#
# Install test: install a configured and built isle into a temporary prefix,
# then build tests/install/consumer.c against it
#   (a) with CMake and find_package(isle), once per library,
#   (b) with cc and pkg-config (isle.pc) against the shared library, where
#       pkg-config sees only the prefix (as on a machine without libuv's
#       or Concurrency Kit's development files), and
#   (c) with cc and `pkg-config --static` against the static library,
# run each program and check that it prints "ok". Also checks the shared
# library's soname: libisle.so.0.MINOR while MAJOR is 0, else .MAJOR.
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

major=$(sed -n 's/^#define ISLE_VERSION_MAJOR \([0-9]*\)$/\1/p' "$src/include/isle.h")
minor=$(sed -n 's/^#define ISLE_VERSION_MINOR \([0-9]*\)$/\1/p' "$src/include/isle.h")
{ [ -n "$major" ] && [ -n "$minor" ]; } || fail "no version in include/isle.h"
if [ "$major" = 0 ]; then soname=libisle.so.0.$minor; else soname=libisle.so.$major; fi
[ -f "$prefix/$libdir/libisle.so" ] || fail "$libdir/libisle.so not installed"
[ -e "$prefix/$libdir/$soname" ] || fail "$libdir/$soname not installed"
got=$(readelf -d "$prefix/$libdir/libisle.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
[ "$got" = "$soname" ] || fail "libisle.so's soname is '$got', not $soname"
echo "soname $soname: ok"

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

# PKG_CONFIG_LIBDIR replaces pkg-config's default search path, so that only
# isle.pc is found: the shared library's flags must need no other .pc file.
pc() {
  PKG_CONFIG_LIBDIR="$prefix/$libdir/pkgconfig" PKG_CONFIG_PATH='' pkg-config "$@"
}

echo "(b) cc + pkg-config, shared"
flags=$(pc --cflags --libs isle) ||
  fail "pkg-config --cflags --libs isle failed with only isle.pc in sight"
echo "  pkg-config --cflags --libs isle: $flags"
case " $flags " in
*" -luv "* | *ck* | *-D__x86_64__*)
  fail "pkg-config --cflags --libs isle gives private dependencies: $flags"
  ;;
esac
# shellcheck disable=SC2086 # flags are words
"$cc" -o "$tmp/consumer-pc" "$src/tests/install/consumer.c" $flags \
  -Wl,-rpath,"$prefix/$libdir" || fail "pkg-config consumer build failed"
expect_ok "$tmp/consumer-pc"

echo "(c) cc + pkg-config --static, static"
sflags=$(pc --static --cflags --libs isle) ||
  fail "pkg-config --static --cflags --libs isle failed"
echo "  pkg-config --static --cflags --libs isle: $sflags"
case " $sflags " in
*" -luv "*) ;;
*) fail "pkg-config --static --libs isle lacks -luv: $sflags" ;;
esac
# The same flags, with -lisle pointed at the archive (the linker would
# otherwise take libisle.so from the same folder).
sflags=$(echo " $sflags " | sed "s| -lisle | $prefix/$libdir/libisle.a |")
# shellcheck disable=SC2086 # flags are words
"$cc" -o "$tmp/consumer-pc-static" "$src/tests/install/consumer.c" $sflags ||
  fail "pkg-config --static consumer build failed"
expect_ok "$tmp/consumer-pc-static"

echo "install_consumer: passed"
