#!/usr/bin/env bash
# Builds tools/tracecheck for Go 1.23 and for the newest Go into
#   ${GOTRACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gotrace}/tracecheck/{tracecheck-go1.23,tracecheck-new}
# and prints the two paths (stdout, one a line). The new toolchain's version is
# printed on stderr and stored in tracecheck-new.version.
#
# tracecheck imports internal/trace, so it is compiled as the package
# GOROOT/src/internal/trace/gotracecheck via `go build -overlay` (GOROOT itself
# is never modified). A build is redone only when tools/tracecheck/*, this
# script or the toolchain version change (sha256 stamp next to the binary).
# A missing toolchain is a hard error.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../tools/tracecheck" && pwd)
. "$HERE/gotrace-env.sh"

require_go "Go 1.23" "$GO123" go1.23
require_go "newest Go" "$GONEW"
mkdir -p "$TRACECHECK_DIR"

# Serialise concurrent builds (e.g. parallel ctest).
exec 9>"$TRACECHECK_DIR/.lock"
flock 9

build_one() { # build_one GOBIN OUTNAME
  local gobin=$1 outname=$2 goroot gover stamp out json pkgdir f
  goroot=$("$gobin" env GOROOT)
  gover=$("$gobin" env GOVERSION)
  out=$TRACECHECK_DIR/$outname
  stamp=$( { echo "$gover $goroot"; cat "$HERE/build-tracecheck.sh" "$HERE/gotrace-env.sh";
             for f in "$SRC"/*; do echo "== ${f##*/}"; cat "$f"; done; } | sha256sum | cut -d' ' -f1)
  if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  pkgdir=$goroot/src/internal/trace/gotracecheck
  json=$TRACECHECK_DIR/$outname.overlay.json
  {
    printf '{"Replace":{'
    local sep=""
    for f in "$SRC"/*.go; do
      case $f in *_test.go) continue ;; esac
      printf '%s"%s/%s":"%s"' "$sep" "$pkgdir" "${f##*/}" "$f"
      sep=","
    done
    printf '}}\n'
  } >"$json"
  echo "build-tracecheck: building $outname with $gover" >&2
  if ! (cd "$goroot/src" && "$gobin" build -overlay="$json" -o "$out.tmp" "$pkgdir"); then
    echo "FATAL: build of $outname with $gover ($gobin) failed" >&2
    exit 1
  fi
  mv -f "$out.tmp" "$out"
  echo "$stamp" >"$out.stamp"
}

build_one "$GO123" tracecheck-go1.23
build_one "$GONEW" tracecheck-new
"$GONEW" env GOVERSION >"$TRACECHECK_DIR/tracecheck-new.version"
echo "build-tracecheck: tracecheck-new uses $(cat "$TRACECHECK_DIR/tracecheck-new.version")" >&2
echo "$TRACECHECK_DIR/tracecheck-go1.23"
echo "$TRACECHECK_DIR/tracecheck-new"
