#!/usr/bin/env bash
# test_pigz.sh BUILD_DIR: an unmodified Debian program under the preload
# library (issue 12): pigz -p 4 compressing 8 MB with 100 Hz CPU samples.
# Its output must be byte-identical to an untraced run, its trace must pass
# every judge, and hold >= 4 goroutines started in one routine of pigz's own
# (yarn's thread launcher: Debian's pigz is stripped, so the name is
# pigz+0xOFFSET; with its debug symbols it is the function's name), the
# blocking of its workers as sync waits, its reads and writes as syscalls,
# and CPU samples.  Needs pigz (scripts/install-deps.sh installs it).
set -euo pipefail
build=$1
check=${GOTRACE_CHECK_TRACE:?GOTRACE_CHECK_TRACE is not set (run through ctest)}
tc=${GOTRACE_TRACECHECK_DIR:?GOTRACE_TRACECHECK_DIR is not set}/tracecheck-go1.23
[ -x "$tc" ] || { echo "FATAL: $tc missing (Go 1.23 checker)"; exit 1; }
pigz=$(command -v pigz) || { echo "FATAL: pigz not installed (scripts/install-deps.sh)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gotrace-pigz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 8 MB of compressible, non-trivial data (deterministic).
awk 'BEGIN { srand(12); for (i = 0; i < 200000; i++) printf "%d %x line %d of the input %f\\n", i, i * 7919, int(rand() * 1000), rand() }' > "$tmp/in"
set +e
"$pigz" -p 4 -c "$tmp/in" > "$tmp/out0"; rc0=$?
env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$build/gotrace-run" -o "$tmp/t.trace" --cpu-hz 100 \
  --stacks all -- pigz -p 4 -c "$tmp/in" > "$tmp/out1"; rc1=$?
set -e
[ "$rc0" = 0 ] && [ "$rc1" = 0 ] || fail "exit status $rc1 traced, $rc0 untraced"
cmp "$tmp/out0" "$tmp/out1" || fail "compressed output differs from the untraced run"
"$check" "$tmp/t.trace" > /dev/null || fail "trace rejected"
"$tc" -summary "$tmp/t.trace" > "$tmp/sum"
# The most common goroutine name: pigz's thread start routine.
top=$(sed -n 's/^gsum id=[0-9]* name=\([^ ]*\) .*/\1/p' "$tmp/sum" | sort | uniq -c | sort -rn | head -1)
n=${top% *}; n=${n// /}; name=${top##* }
[ "$n" -ge 4 ] || fail "only $n goroutines share a start routine ($name)"
case $name in pigz+0x*|[a-z]*[a-z]) ;; *) fail "start routine name $name";; esac
[[ $name == *libc* || $name == *gotrace* ]] && fail "start routine $name is not pigz's own"
grep -q "to=Waiting reason=sync" "$tmp/sum" || fail "no sync block (pigz's workers wait on yarn's condition variables)"
grep -q "to=Syscall" "$tmp/sum" || fail "no syscall"
s=$(grep -c "^sample " "$tmp/sum" || true)
[ "$s" -ge 5 ] || fail "$s CPU samples"
echo "ok: $n goroutines in $name, $s CPU samples"
