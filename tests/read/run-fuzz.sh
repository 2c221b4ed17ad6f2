#!/usr/bin/env bash
# run-fuzz.sh OUTDIR [WORKERS_BIN]: builds the libFuzzer target of the trace
# reader (tests/read/fuzz_read.c + src/read) with clang, -fsanitize=fuzzer,
# address,undefined, seeds it with Go's own test traces (binary form, made
# with Go 1.23's gotraceraw) and traces written by libgotrace (the workers
# example, if given), and runs it for GOTRACE_FUZZ_SECONDS (default 60).
# The corpus is kept in OUTDIR/corpus (it grows across runs); a crash is
# saved as OUTDIR/artifacts/crash-* and fails the run.
#
# Longer runs, by hand (GOTRACE_FUZZ_ARGS passes more libFuzzer flags):
#   GOTRACE_FUZZ_SECONDS=3600 tests/read/run-fuzz.sh build-fuzz build/examples/workers
#   GOTRACE_FUZZ_SECONDS=3600 GOTRACE_FUZZ_ARGS="-jobs=2 -workers=2" tests/read/run-fuzz.sh build-fuzz
#   build-fuzz/fuzz_read build-fuzz/artifacts/crash-...    # replay a crash
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:?usage: run-fuzz.sh OUTDIR [WORKERS_BIN]}
WORKERS=${2:-}
SECS=${GOTRACE_FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-$(command -v clang-14 || command -v clang || echo clang)}
if ! command -v "$CC" >/dev/null; then
  echo "FATAL: $CC not found: scripts/install-deps.sh installs clang-14" >&2
  exit 1
fi
mkdir -p "$OUT/corpus" "$OUT/seeds" "$OUT/artifacts"
OUT=$(cd "$OUT" && pwd)

"$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$ROOT/src/read/include" -I"$ROOT/src/read" $(find "$ROOT/src/read" -name '*.c' | sort) \
  "$HERE/fuzz_read.c" -o "$OUT/fuzz_read.tmp"
mv -f "$OUT/fuzz_read.tmp" "$OUT/fuzz_read"

# Seeds: Go's test traces, and libgotrace traces.
mapfile -t RAW < <("$HERE/build-gotraceraw.sh")
GOTRACERAW=${RAW[0]}
GO123_ROOT=${RAW[1]}
for t in "$GO123_ROOT"/src/internal/trace/testdata/tests/*.test; do
  n=$(basename "$t" .test)
  awk '/^-- trace --$/{f=1;next} /^-- /{f=0} f' "$t" | "$GOTRACERAW" text2bytes >"$OUT/seeds/go-$n" 2>/dev/null ||
    rm -f "$OUT/seeds/go-$n"
done
if [ -n "$WORKERS" ] && [ -x "$WORKERS" ]; then
  "$WORKERS" "$OUT/seeds/workers.trace" >/dev/null
  # its prefixes at generation ends and a cut one
  head -c 20000 "$OUT/seeds/workers.trace" >"$OUT/seeds/workers-cut"
fi
nseeds=$(ls "$OUT/seeds" | wc -l)
echo "run-fuzz: $nseeds seeds, corpus $(ls "$OUT/corpus" | wc -l) inputs, running ${SECS}s"

set +e
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$OUT/fuzz_read" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -dict="$HERE/fuzz_read.dict" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/" \
  ${GOTRACE_FUZZ_ARGS:-} "$OUT/corpus" "$OUT/seeds" >"$OUT/fuzz.log" 2>&1
rc=$?
set -e
grep -E '^#[0-9]+.*(DONE|pulse)|stat::|Done [0-9]+ runs' "$OUT/fuzz.log" | tail -12
if [ $rc -ne 0 ]; then
  echo "run-fuzz: FAILED (exit $rc); log: $OUT/fuzz.log" >&2
  grep -E -A30 'ERROR|invariant|runtime error|Test unit written' "$OUT/fuzz.log" | head -60 >&2
  exit 1
fi
echo "run-fuzz: ok: no finding in ${SECS}s"
