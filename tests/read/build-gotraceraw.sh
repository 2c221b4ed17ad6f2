#!/usr/bin/env bash
# Builds Go 1.23's gotraceraw (src/internal/trace/testdata/cmd/gotraceraw:
# trace text <-> wire format) into the tracecheck cache, like
# tests/go/test_tracecheck.sh does (same file, same stamp), and prints two
# lines: its path, the Go 1.23 GOROOT (whose testdata the tests use) and the
# Go build cache to use with it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=$(cd "$HERE/../../scripts" && pwd)
. "$SCRIPTS/gotrace-env.sh"
require_go "Go 1.23" "$GO123" go1.23
mkdir -p "$TRACECHECK_DIR"
exec 9>"$TRACECHECK_DIR/.lock"
flock 9
GO123_ROOT=$("$GO123" env GOROOT)
RAW=$TRACECHECK_DIR/gotraceraw-go1.23
raw_stamp="$("$GO123" env GOVERSION) $GO123_ROOT"
if [ ! -x "$RAW" ] || [ "$(cat "$RAW.stamp" 2>/dev/null)" != "$raw_stamp" ]; then
  (cd "$GO123_ROOT/src/internal/trace/testdata/cmd/gotraceraw" && "$GO123" build -o "$RAW.tmp" .) >&2
  mv -f "$RAW.tmp" "$RAW"
  echo "$raw_stamp" >"$RAW.stamp"
fi
echo "$RAW"
echo "$GO123_ROOT"
echo "$GOCACHE"
