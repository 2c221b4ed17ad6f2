#!/usr/bin/env bash
# The install test (issue 11): install the build into a temporary prefix and
# build a tiny program against it by every route a C project uses --
# pkg-config (shared), pkg-config --static, CMake find_package (shared and
# static), the autostart object (pkg-config and CMake, traced from
# GOTRACE_OUT alone) -- and as a subproject (add_subdirectory, no install); each one
# runs and writes a trace that Go's validators accept.  Also checks what the
# installed libraries expose: only gotrace_* symbols (nm), the static
# archive's TLS in the initial-exec model, the shared library's SONAME.
# usage: test_install.sh BUILD_DIR   (env: GOTRACE_CHECK_TRACE, TMPDIR)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
build=$(cd "${1:?usage: test_install.sh BUILD_DIR}" && pwd)
check=${GOTRACE_CHECK_TRACE:?GOTRACE_CHECK_TRACE is not set (run through ctest)}
work=$(mktemp -d "${TMPDIR:-/tmp}/gotrace-install.XXXXXX")
prefix=$work/prefix
fail() { echo "test_install: FAIL: $*" >&2; echo "kept: $work" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null || fail "cmake --install"
lib=$(ls -d "$prefix"/lib*/ | head -1); lib=${lib%/}
for f in include/gotrace.h bin/gotrace-read share/man/man1/gotrace-read.1; do
  [ -e "$prefix/$f" ] || fail "$f not installed"
done
for f in libgotrace.a libgotrace.so pkgconfig/gotrace.pc cmake/gotrace/gotraceConfig.cmake \
         pkgconfig/gotrace-autostart.pc gotrace/gotrace-autostart.o \
         cmake/gotrace/gotraceConfigVersion.cmake cmake/gotrace/gotraceTargets.cmake; do
  [ -e "$lib/$f" ] || fail "$lib/$f not installed"
done

# What the libraries expose: defined global symbols are the API only.
bad=$(nm -g --defined-only "$lib/libgotrace.a" | awk 'NF==3 {print $3}' | grep -v '^gotrace_' || true)
[ -z "$bad" ] || fail "libgotrace.a exports internals: $(echo $bad | head -c 400)"
bad=$(nm -D --defined-only "$lib/libgotrace.so" | awk 'NF==3 {print $3}' | grep -v '^gotrace_\|^GOTRACE_' || true)
[ -z "$bad" ] || fail "libgotrace.so exports internals: $bad"
# Initial-exec TLS: no general-dynamic or local-dynamic TLS relocations.
relocs=$(readelf -rW "$lib/libgotrace.a")
if grep -q 'TLSGD\|TLSLD' <<<"$relocs"; then
  fail "libgotrace.a has general/local-dynamic TLS (the fast path needs initial-exec)"
fi
soname=$(readelf -dW "$lib/libgotrace.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libgotrace.so.0 ] || fail "SONAME is '$soname', not libgotrace.so.0"

export PKG_CONFIG_PATH=$lib/pkgconfig
out=$work/bin; mkdir -p "$out"
make -s -C "$HERE" OUT="$out" shared static auto >/dev/null || fail "pkg-config consumers did not build"
cmake -S "$HERE" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null || fail "find_package consumer: configure"
cmake --build "$work/cm" >/dev/null || fail "find_package consumer: build"
cmake -S "$HERE/subproject" -B "$work/sub" -DGOTRACE_SOURCE="$ROOT" >/dev/null || fail "subproject: configure"
cmake --build "$work/sub" -j2 >/dev/null || fail "subproject: build"
cp "$work/cm/app_cmake" "$work/cm/app_cmake_static" "$work/cm/app_cmake_auto" "$work/sub/app_sub" "$out/"

# The static programs must not load libgotrace.so; the shared ones must.
# (ldd's output is captured first: grep -q would end the pipe early.)
for app in app_pc_static app_cmake_static; do
  deps=$(LD_LIBRARY_PATH=$lib ldd "$out/$app")
  case $deps in *libgotrace*) fail "$app links libgotrace.so" ;; esac
done
for app in app_pc app_cmake; do
  deps=$(LD_LIBRARY_PATH=$lib ldd "$out/$app")
  case $deps in *"libgotrace.so.0 => $lib/"*) ;; *) fail "$app does not use the installed libgotrace.so" ;; esac
done

# The autostart programs trace only when GOTRACE_OUT says so.  They run
# without the test harness's own GOTRACE_* variables, which the library
# would rightly refuse as unknown.
unset GOTRACE_CHECK_TRACE GOTRACE_TRACECHECK_DIR
for app in app_pc_auto app_cmake_auto; do
  if env -u GOTRACE_OUT LD_LIBRARY_PATH=$lib "$out/$app" 2>/dev/null; then
    fail "$app traced (or claimed to) without GOTRACE_OUT"
  fi
done

n=0
for app in app_pc app_pc_static app_cmake app_cmake_static app_sub app_pc_auto app_cmake_auto; do
  trace=$work/$app.trace
  case $app in
    *_auto)
      # %p: the process id; the constructor started tracing, exit() ends it.
      GOTRACE_OUT="$work/$app.%p.trace" LD_LIBRARY_PATH=$lib "$out/$app" &
      pid=$!
      wait "$pid" || fail "$app exited with $?"
      [ -s "$work/$app.$pid.trace" ] || fail "$app: no trace at $work/$app.$pid.trace"
      mv "$work/$app.$pid.trace" "$trace" ;;
    *)
      LD_LIBRARY_PATH=$lib "$out/$app" "$trace" || fail "$app exited with $?" ;;
  esac
  "$check" "$trace" || fail "$app: trace rejected"
  dump=$("$build/gotrace-read" dump "$trace")
  regions=$(grep -c '^UserRegionBegin ' <<<"$dump" || true)
  [ "$regions" -eq 4 ] || fail "$app: $regions region begins, expected 4"
  n=$((n + 1))
done
echo "test_install: $n consumers built against the install in $prefix, every trace valid"
rm -rf "$work"
