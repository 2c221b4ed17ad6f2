#!/usr/bin/env bash
# Remakes the README's screenshots of `go tool trace` (Go 1.23):
#   docs/img/go-tool-trace.png   examples/syncpool.c's trace, thread view
#   docs/img/pigz-goroutines.png Debian's pigz traced unmodified
#                                (gotrace-run --cpu-hz 100): the goroutine
#                                analysis, grouped by start routine
#   docs/img/pigz-trace.png      the same trace's thread view: workers,
#                                their condition-variable waits, reads and
#                                writes as syscalls, CPU samples
# usage: make-screenshot.sh [BUILD_DIR] [syncpool|pigz|all]  (default: build, all)
# Needs a build, Go 1.23 (scripts/install-deps.sh), pigz, chromium and
# Node >= 20 (apt-get install pigz chromium nodejs).  Not part of the test
# suite.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$HERE/../../build}
what=${2:-all}
work=$(mktemp -d)
srv=0
trap 'kill "$srv" 2>/dev/null || true; rm -rf "$work"' EXIT

# shot TRACE PATH OUT.png WAIT_MS W H CLIP_H: serve TRACE with go tool
# trace, screenshot http://.../PATH into OUT.png.
shot() {
  local trace=$1 path=$2 out=$3; shift 3
  local port=$((8700 + RANDOM % 200))
  GOTOOLCHAIN=local /usr/lib/go-1.23/bin/go tool trace -http=127.0.0.1:$port "$trace" >"$work/srv.log" 2>&1 &
  srv=$!
  for _ in $(seq 300); do grep -q listening "$work/srv.log" && break; sleep 0.2; done
  node --experimental-websocket "$HERE/screenshot.mjs" "http://127.0.0.1:$port/$path" "$HERE/$out" "$@"
  kill "$srv" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  echo "wrote $HERE/$out"
}

if [ "$what" = all ] || [ "$what" = syncpool ]; then
  "$build/examples/syncpool" "$work/sp.trace" >/dev/null
  shot "$work/sp.trace" "trace?view=thread" go-tool-trace.png 12000 1600 1000 490
fi
if [ "$what" = all ] || [ "$what" = pigz ]; then
  # 12 MB of text that compresses like prose (words from a small
  # vocabulary), made here so the picture does not depend on a file.
  awk 'BEGIN { srand(7); split("the of and to in is that for it as was with be by on not he this are or", w, " ");
               for (i = 0; i < 2000000; i++) printf "%s%s", w[int(rand() * 20) + 1], (i % 12 == 11) ? "\n" : " " }' \
    > "$work/text"
  "$build/gotrace-run" -o "$work/pigz.trace" --cpu-hz 100 -- pigz -p 4 -c "$work/text" > /dev/null
  shot "$work/pigz.trace" goroutines pigz-goroutines.png 3000 1400 700 330
  shot "$work/pigz.trace" "trace?view=thread" pigz-trace.png 15000 1600 1000 560
fi
