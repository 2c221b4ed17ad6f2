#!/usr/bin/env bash
# From a fresh Debian 12 machine to a trace open in Go's tools:
# installs what is missing, builds, runs the main example, and has Go's own
# validators (Go 1.23 and the newest Go) and `go tool trace` judge the trace.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target workers >/dev/null
./build/examples/workers trace.out
bash scripts/check-trace.sh trace.out
cat <<MSG

trace.out is a Go execution trace.  Open it with:
  GOTOOLCHAIN=local /usr/lib/go-1.23/bin/go tool trace trace.out
(then: "Goroutine analysis" lists worker_main x4 and main x1; "User-defined
tasks" lists "job" x400 and "all jobs"; "View trace by proc" shows each
thread's regions and logs on its own row.)
MSG
