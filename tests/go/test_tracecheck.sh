#!/usr/bin/env bash
# Self-test of our trace judges: proves both tracecheck binaries (Go 1.23 and
# the newest Go) accept what Go's own tests call valid and REJECT what Go's own
# tests call broken, and that `tracecheck -summary` agrees across toolchains.
#
# Inputs: every *.test (txtar: "-- expect --" + "-- trace --") in Go 1.23's
# src/internal/trace/testdata/tests, plus go123-sync.test from the newest
# tree. The "-- trace --" text is converted to the wire format with Go 1.23's
# gotraceraw (built into the tracecheck cache), then each binary is run:
#   SUCCESS          -> must exit 0
#   FAILURE "regexp" -> must exit 1 with stderr matching regexp
# The last line is "N passed, M failed"; exit status is non-zero on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=$(cd "$HERE/../../scripts" && pwd)
. "$SCRIPTS/gotrace-env.sh"

mapfile -t BINS < <("$SCRIPTS/build-tracecheck.sh")
if [ ${#BINS[@]} -ne 2 ] || [ ! -x "${BINS[0]}" ] || [ ! -x "${BINS[1]}" ]; then
  echo "FATAL: scripts/build-tracecheck.sh failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
TC123=${BINS[0]}
TCNEW=${BINS[1]}
GONEW_VER=$(cat "$TRACECHECK_DIR/tracecheck-new.version")
GO123_ROOT=$("$GO123" env GOROOT)
GONEW_ROOT=$("$GONEW" env GOROOT)

# gotraceraw from the Go 1.23 tree (text format <-> wire format), cached.
RAW=$TRACECHECK_DIR/gotraceraw-go1.23
raw_stamp="$("$GO123" env GOVERSION) $GO123_ROOT"
if [ ! -x "$RAW" ] || [ "$(cat "$RAW.stamp" 2>/dev/null)" != "$raw_stamp" ]; then
  if ! (cd "$GO123_ROOT/src/internal/trace/testdata/cmd/gotraceraw" && "$GO123" build -o "$RAW.tmp" .); then
    echo "FATAL: cannot build gotraceraw with Go 1.23" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  mv -f "$RAW.tmp" "$RAW" && echo "$raw_stamp" >"$RAW.stamp"
fi

WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

section() { # section NAME FILE: body of "-- NAME --" in a txtar file
  awk -v h="-- $1 --" '$0 == h {f=1; next} /^-- .* --$/ {f=0} f' "$2"
}

# check LABEL BIN TRACE EXPECT: run one judge on one wire-format trace.
check() {
  local label=$1 bin=$2 trace=$3 expect=$4 rc re
  "$bin" "$trace" >/dev/null 2>"$WORK/err"; rc=$?
  case $expect in
    SUCCESS)
      if [ $rc -eq 0 ]; then ok "$label"; else bad "$label: expected SUCCESS, exit $rc: $(head -3 "$WORK/err")"; fi ;;
    FAILURE\ *)
      # Go-quoted regexp -> plain: strip the quotes, undo \" and \\.
      re=${expect#FAILURE }; re=${re#\"}; re=${re%\"}
      re=$(printf '%s' "$re" | sed -e 's/\\"/"/g' -e 's/\\\\/\\/g')
      if [ $rc -ne 1 ]; then
        bad "$label: expected FAILURE /$re/, got exit $rc: $(head -3 "$WORK/err")"
      elif ! grep -Eq -- "$re" "$WORK/err"; then
        bad "$label: exit 1 but stderr does not match /$re/: $(head -3 "$WORK/err")"
      elif ! head -1 "$WORK/err" | grep -q '^tracecheck: go1\.[0-9.]*: '; then
        bad "$label: stderr lacks the 'tracecheck: <go version>: ' prefix: $(head -1 "$WORK/err")"
      else
        ok "$label"
      fi ;;
    *) bad "$label: unknown expectation '$expect'" ;;
  esac
}

# Expectations that differ by toolchain. Key: "<test file>@<go1.23|new>".
# Value replaces the file's own "-- expect --" for that toolchain.
declare -A OVERRIDE
# go123-sync.test comes from the NEWEST tree (absent from 1.23): its generation
# 2 holds no events at all. The newer reader emits a Sync at the start of each
# generation and accepts it (SUCCESS is authoritative there), while Go 1.23's
# reader needs at least one timed event per generation and reports
# "broken trace: frontier is empty" (verified; see go-trace-format.md §3.4).
OVERRIDE["go123-sync.test@go1.23"]='FAILURE "broken trace: frontier is empty"'

TESTS=("$GO123_ROOT"/src/internal/trace/testdata/tests/*.test
       "$GONEW_ROOT"/src/internal/trace/testdata/tests/go123-sync.test)
[ -e "${TESTS[0]}" ] || { echo "FATAL: no Go 1.23 trace tests found" >&2; echo "0 passed, 1 failed"; exit 1; }

for t in "${TESTS[@]}"; do
  name=${t##*/}
  expect=$(section expect "$t" | head -1)
  bin=$WORK/${name%.test}.bin
  if ! section trace "$t" | "$RAW" text2bytes >"$bin" 2>"$WORK/err"; then
    bad "$name: text2bytes failed: $(head -3 "$WORK/err")"
    continue
  fi
  check "$name (go1.23)" "$TC123" "$bin" "${OVERRIDE[$name@go1.23]:-$expect}"
  check "$name ($GONEW_VER)" "$TCNEW" "$bin" "${OVERRIDE[$name@new]:-$expect}"

  # Every trace valid under both: -summary must agree on every line except the
  # Sync lines, the gsum numbers and the event count (those differ by design,
  # see tools/tracecheck/main.go), and must agree on names and generations.
  if [ "$expect" = SUCCESS ] && [ -z "${OVERRIDE[$name@go1.23]:-}${OVERRIDE[$name@new]:-}" ]; then
    "$TC123" -summary "$bin" >"$WORK/s123" 2>&1 && "$TCNEW" -summary "$bin" >"$WORK/snew" 2>&1
    norm() { grep -Ev '^(sync|gsum|end) ' "$1"; sed -n -E 's/^gsum (id=[^ ]* name=[^ ]*).*/gsum \1/p; s/^end events=[0-9]* (gens=.*)/end \1/p' "$1"; }
    # Readers break ties between equal timestamps differently and then clamp
    # times to be strictly increasing (1.27 also puts a Sync at the start,
    # whose time is the earliest batch time), so traces with equal timestamps
    # (the dt=0 tests here) can differ in t= and order: then compare without
    # t= as a sorted multiset.
    unt() { sed -E 's/ t=[0-9]+ / /' | sort; }
    if diff <(norm "$WORK/s123") <(norm "$WORK/snew") >"$WORK/diff"; then
      ok "$name: -summary agrees across toolchains"
    elif diff <(norm "$WORK/s123" | unt) <(norm "$WORK/snew" | unt) >"$WORK/diff"; then
      ok "$name: -summary agrees across toolchains (modulo order/times of equal-timestamp events)"
    else
      bad "$name: -summary differs across toolchains: $(head -6 "$WORK/diff")"
    fi
  fi
done

# Exact counts from -summary on go122-annotations.test, identical under both.
ann=$WORK/go122-annotations.bin
count() { grep -c "^$2 " "$1"; }
for v in go1.23 new; do
  if [ $v = go1.23 ]; then bin=$TC123; else bin=$TCNEW; fi
  "$bin" -summary "$ann" >"$WORK/ann.$v" 2>"$WORK/err" || { bad "annotations -summary ($v) failed: $(head -3 "$WORK/err")"; continue; }
  got="taskbegin=$(count "$WORK/ann.$v" taskbegin) taskend=$(count "$WORK/ann.$v" taskend)"
  got+=" regionbegin=$(count "$WORK/ann.$v" regionbegin) regionend=$(count "$WORK/ann.$v" regionend)"
  got+=" log=$(count "$WORK/ann.$v" log) gostate=$(count "$WORK/ann.$v" gostate)"
  got+=" procstate=$(count "$WORK/ann.$v" procstate) $(tail -1 "$WORK/ann.$v" | cut -d' ' -f3)"
  want="taskbegin=1 taskend=1 regionbegin=5 regionend=2 log=1 gostate=19 procstate=50 gens=1"
  if [ "$got" = "$want" ]; then ok "annotations -summary counts ($v): $got"; else bad "annotations -summary counts ($v): got '$got', want '$want'"; fi
done
# A few exact lines (non-sync event times are the same under both toolchains).
for v in go1.23 new; do
  for l in '^taskbegin gen=1 t=1799237521758720 g=1 m=167926 p=0 id=1 parent=-1 name=task0$' \
           '^log gen=1 t=1799237521846272 g=9 m=167926 p=0 task=1 cat=key0 msg=0123456789abcdef$' \
           '^regionbegin gen=1 t=1799237521792960 g=1 m=167926 p=0 task=1 name=task0%20region stack=main\.main@/usr/local/google/home/mknyszek/work/go-1/src/internal/trace/v2/testdata/testprog/annotations\.go:34$' \
           '^regionbegin gen=1 .* task=1 name=unended%20region '; do
    if grep -Eq -- "$l" "$WORK/ann.$v"; then ok "annotations ($v) has /$l/"; else bad "annotations ($v) lacks /$l/"; fi
  done
done

# A real trace written by the Go 1.23 runtime (program generated here) must be
# accepted by both checkers with the expected annotation counts.
mkdir -p "$WORK/prog"
cat >"$WORK/prog/main.go" <<'GO'
package main

import (
	"context"
	"os"
	"runtime/trace"
	"sync"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := trace.Start(f); err != nil {
		panic(err)
	}
	ctx, task := trace.NewTask(context.Background(), "self test")
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trace.WithRegion(ctx, "spin", func() {
				n := 0
				for j := 0; j < 100000; j++ {
					n += j
				}
				trace.Logf(ctx, "cat @;", "n=%d", n)
			})
		}()
	}
	wg.Wait()
	task.End()
	trace.Stop()
	if err := f.Close(); err != nil {
		panic(err)
	}
}
GO
printf 'module selftest\n\ngo 1.23\n' >"$WORK/prog/go.mod"
if ! (cd "$WORK/prog" && "$GO123" run . "$WORK/real.trace") >"$WORK/err" 2>&1; then
  bad "real Go 1.23 trace: generating failed: $(head -3 "$WORK/err")"
else
  for v in go1.23 new; do
    if [ $v = go1.23 ]; then bin=$TC123; else bin=$TCNEW; fi
    if ! "$bin" -summary "$WORK/real.trace" >"$WORK/real.$v" 2>"$WORK/err"; then
      bad "real Go 1.23 trace rejected by $v: $(head -3 "$WORK/err")"
      continue
    fi
    got="taskbegin=$(count "$WORK/real.$v" taskbegin) regionbegin=$(count "$WORK/real.$v" regionbegin) log=$(count "$WORK/real.$v" log)"
    got+=" logmsg=$(grep -c '^log .* task=1 cat=cat%20%40%3B msg=n%3D4999950000$' "$WORK/real.$v")"
    want="taskbegin=1 regionbegin=3 log=3 logmsg=3"
    if [ "$got" = "$want" ]; then ok "real Go 1.23 trace ($v): $got"; else bad "real Go 1.23 trace ($v): got '$got', want '$want'"; fi
  done
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
