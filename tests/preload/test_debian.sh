#!/usr/bin/env bash
# test_debian.sh BUILD_DIR ENTRY -- PROGRAM ARGS...: an unmodified Debian
# program under the preload library (issue 12), compressing 9 MB of
# generated text to stdout with 100 Hz CPU samples.  Its output must be
# byte-identical to an untraced run, its trace must pass every judge, and
# the Go 1.23 checker's summary must show >= 4 goroutines started in one
# routine of the program's own code, in module ENTRY (pigz: yarn's thread
# launcher in pigz; xz: liblzma's worker; Debian's binaries are stripped,
# so the names are MODULE+0xOFFSET, with debug symbols the functions'
# names), each created by another goroutine with its stack, none of the
# library's or liburcu's threads, the workers' waits as sync blocks with
# unblocks from other goroutines (condition variables signalled),
# syscalls, and CPU samples in the program's own code.  The programs are
# installed by scripts/install-deps.sh.
set -euo pipefail
build=$1 entry=$2
shift 3
check=${GOTRACE_CHECK_TRACE:?GOTRACE_CHECK_TRACE is not set (run through ctest)}
tc=${GOTRACE_TRACECHECK_DIR:?GOTRACE_TRACECHECK_DIR is not set}/tracecheck-go1.23
[ -x "$tc" ] || { echo "FATAL: $tc missing (Go 1.23 checker)"; exit 1; }
command -v "$1" > /dev/null || { echo "FATAL: $1 not installed (scripts/install-deps.sh)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gotrace-debian.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prog=$1
fail() { echo "FAIL: $prog: $*"; exit 1; }

# Compressible, non-trivial, deterministic input.
awk 'BEGIN { srand(12); for (i = 0; i < 200000; i++) printf "%d %x line %d of the input %f\n", i, i * 7919, int(rand() * 1000), rand() }' > "$tmp/in"
set +e
"$@" < "$tmp/in" > "$tmp/out0"; rc0=$?
TIMEFORMAT='%U %S'
{ time env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$build/gotrace-run" -o "$tmp/t.trace" \
    --cpu-hz 100 --stacks all -- "$@" < "$tmp/in" > "$tmp/out1"; rc1=$?; } 2> "$tmp/cpu"
set -e
# CPU seconds of the traced run (user + system, the program and ours).
cpu=$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$tmp/cpu") # ms
[ "$rc0" = 0 ] && [ "$rc1" = 0 ] || fail "exit status $rc1 traced, $rc0 untraced"
cmp "$tmp/out0" "$tmp/out1" || fail "output differs from the untraced run"
"$check" "$tmp/t.trace" > /dev/null || fail "trace rejected"
"$tc" -summary "$tmp/t.trace" > "$tmp/sum"
grep -E "^gsum .* name=[^ ]*(urcu|gotrace)" "$tmp/sum" && fail "a thread of the library or liburcu is traced"
# The most common goroutine name: the program's thread start routine.
top=$(sed -n 's/^gsum id=[0-9]* name=\([^ ]*\) .*/\1/p' "$tmp/sum" | sort | uniq -c | sort -rn | head -1)
n=${top% *}; n=${n// /}; name=${top##* }
[ "$n" -ge 4 ] || fail "only $n goroutines share a start routine ($name)"
case $name in "$entry"*) ;; *) fail "start routine $name is not in $entry";; esac
# Each of them created by another goroutine (the thread that called
# pthread_create), with that thread's stack.
for id in $(sed -n "s/^gsum id=\([0-9]*\) name=$name .*/\1/p" "$tmp/sum"); do
  awk -v id="id=$id" '$1 == "gostate" && $7 == id && $8 == "from=NotExist" && $4 != "g=-1" &&
    $NF != "evstack=" { ok = 1 } END { exit !ok }' "$tmp/sum" ||
    fail "goroutine $id not created by another goroutine with its stack"
done
grep -q "to=Waiting reason=sync" "$tmp/sum" || fail "no sync block"
awk '$1 == "gostate" && $8 == "from=Waiting" && $4 != "g=-1" { ok = 1 } END { exit !ok }' "$tmp/sum" ||
  fail "no goroutine woken by another"
grep -q "to=Syscall" "$tmp/sum" || fail "no syscall"
s=$(grep -c "^sample " "$tmp/sum" || true)
# At least 40% of 100 per CPU second: every thread's CPU time is sampled,
# including workers that block every signal (xz's: the preload keeps
# SIGPROF deliverable, signals.c; otherwise the kernel hands their
# samples to sleeping threads, and most are lost).
[ $((s * 1000 * 10)) -ge $((cpu * 100 * 4)) ] || fail "$s CPU samples for $cpu ms of CPU at 100 Hz"
# Attributed to the program's own code: samples whose stack runs through
# ENTRY's module (pigz's stacks run through pigz into libz; xz's workers
# through liblzma).  At 100 Hz setitimer gives few samples (kernel tick):
# with 20 or more, at least half must; with fewer, at least one.
a=$(grep "^sample " "$tmp/sum" | grep -c "stack=\([^ ]*;\)\?$entry" || true)
if [ "$s" -ge 20 ]; then
  [ $((2 * a)) -ge "$s" ] || fail "$a of $s CPU samples in $entry's code"
else
  [ "$a" -ge 1 ] || fail "none of $s CPU samples in $entry's code"
fi
echo "ok: $prog: $n goroutines in $name, $s CPU samples for $cpu ms of CPU ($a in $entry)"
