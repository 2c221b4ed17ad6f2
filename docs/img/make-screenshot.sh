#!/usr/bin/env bash
# Remakes docs/img/go-tool-trace.png, the README's screenshot: the trace of
# examples/syncpool.c in `go tool trace`'s thread view.  Needs a build
# (BUILD_DIR, default build), Go 1.23 (scripts/install-deps.sh), chromium and
# Node >= 20 (apt-get install chromium nodejs).  Not part of the test suite.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$HERE/../../build}
work=$(mktemp -d)
trap 'kill "${srv:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$build/examples/syncpool" "$work/sp.trace" >/dev/null
port=$((8700 + RANDOM % 200))
GOTOOLCHAIN=local /usr/lib/go-1.23/bin/go tool trace -http=127.0.0.1:$port "$work/sp.trace" >"$work/srv.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q listening "$work/srv.log" && break; sleep 0.2; done
node --experimental-websocket "$HERE/screenshot.mjs" "http://127.0.0.1:$port/trace?view=thread" \
  "$HERE/go-tool-trace.png" 12000 1600 1000 490
echo "wrote $HERE/go-tool-trace.png"
