#!/usr/bin/env bash
# Remakes docs/img/flamegraph.png, the README's flame graph: the CPU samples
# of examples/cpuhot.c (two threads, 70% of their CPU in hot_a, 30% in
# hot_b, sampled at 1 kHz) turned into a pprof profile by
# `gotrace-read pprof` and drawn by `go tool pprof`'s web UI.  Needs a build
# (BUILD_DIR, default build), Go 1.23 (scripts/install-deps.sh), chromium and
# Node >= 20 (apt-get install chromium nodejs).  Not part of the test suite.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$HERE/../../build}
work=$(mktemp -d)
trap 'kill "${srv:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$build/examples/cpuhot" -t 1.5 -z 1000 -n 2 "$work/cpuhot.trace" >/dev/null
"$build/gotrace-read" pprof "$work/cpuhot.trace" "$work/cpu.pb.gz"
port=$((8900 + RANDOM % 200))
GOTOOLCHAIN=local /usr/lib/go-1.23/bin/go tool pprof -no_browser -http=127.0.0.1:$port \
  "$work/cpu.pb.gz" >"$work/srv.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "Serving web UI" "$work/srv.log" && break; sleep 0.2; done
node --experimental-websocket "$HERE/screenshot.mjs" "http://127.0.0.1:$port/ui/flamegraph" \
  "$HERE/flamegraph.png" 3000 1400 420 215
echo "wrote $HERE/flamegraph.png"
