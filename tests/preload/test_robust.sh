#!/usr/bin/env bash
# test_robust.sh BUILD_DIR PLROBUST PLDL: issue 12's preload library on
# programs that are hard on a tracer (plrobust.c): their own SIGSEGV and
# SIGPROF handlers, crashes, abort, _exit from a thread, vfork/posix_spawn/
# system, a daemon that closes every descriptor, dlopen of a library that
# creates threads.  Each run under gotrace-run must print the same bytes
# and end with the same status (or signal) as the untraced run, its trace
# must pass every judge (GOTRACE_CHECK_TRACE), and the Go 1.23 checker's
# summary must hold the program's last events: the thread labelled "last"
# (pthread_setname_np), its nanosleep as a syscall, its block on the
# mutex main holds, the unblock by main, and it running again.  Plain
# builds only (a sanitizer runtime must be the first library loaded).
set -euo pipefail
build=$1 prog=$2 dl=$3
check=${GOTRACE_CHECK_TRACE:?GOTRACE_CHECK_TRACE is not set (run through ctest)}
tc=${GOTRACE_TRACECHECK_DIR:?GOTRACE_TRACECHECK_DIR is not set}/tracecheck-go1.23
[ -x "$tc" ] || { echo "FATAL: $tc missing (Go 1.23 checker)"; exit 1; }
run=$build/gotrace-run
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gotrace-robust.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# traced NAME WANT_RC MODE [gotrace-run options]: run untraced and traced,
# compare; leaves the summary in $tmp/NAME.sum, stderr in $tmp/NAME.err.
traced() {
  local name=$1 want=$2 mode=$3; shift 3
  local rc0 rc1
  set +e
  (cd "$tmp" && exec "$prog" "$mode" "$dl") > "$tmp/$name.out0" 2> "$tmp/$name.err0"; rc0=$?
  (cd "$tmp" && exec env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/$name.trace" "$@" -- \
     "$prog" "$mode" "$dl") > "$tmp/$name.out1" 2> "$tmp/$name.err"; rc1=$?
  set -e
  [ "$rc0" = "$want" ] || fail "$name: untraced exit status $rc0 (want $want)"
  [ "$rc1" = "$rc0" ] || fail "$name: exit status $rc1 traced, $rc0 untraced"
  cmp "$tmp/$name.out0" "$tmp/$name.out1" || fail "$name: output differs"
  "$check" "$tmp/$name.trace" > /dev/null || fail "$name: trace rejected"
  "$tc" -summary "$tmp/$name.trace" > "$tmp/$name.sum"
}

# The last events: goroutine labelled "last": syscall, mutex block,
# unblocked by another goroutine, running again.
last_events() {
  local name=$1 s=$tmp/$1.sum id
  for id in $(sed -n 's/^label .* g=\([0-9]*\) .* label=last$/\1/p' "$s"); do
    awk -v id="$id" '
      $1 == "gostate" { g = $4; sub("g=", "", g) }
      $1 == "gostate" && $7 == "id=" id {
        if (st == 0 && $8 == "from=Running" && $9 == "to=Syscall") st = 1
        else if (st == 1 && $8 == "from=Running" && $10 == "reason=sync.Mutex.Lock") st = 2
        else if (st == 2 && $8 == "from=Waiting" && g != id && g != "-1") st = 3
        else if (st == 3 && $8 == "from=Runnable" && $9 == "to=Running") st = 4 }
      END { exit st != 4 }' "$s" || fail "$name: goroutine $id (last) lacks its last events"
    n=$((${n:-0} + 1))
  done
}
want_last() { # NAME COUNT: COUNT goroutines labelled last, each with its events
  n=0; last_events "$1"
  [ "$n" = "$2" ] || fail "$1: $n goroutines labelled last (want $2)"
}
no_stderr() { [ ! -s "$tmp/$1.err" ] || fail "$1: stderr: $(cat "$tmp/$1.err")"; }

# Its own SIGSEGV handler: recovers twice with siglongjmp, or _exits.
traced segv 4 segv --stacks all;            no_stderr segv;     want_last segv 2
traced segvexit 5 segvexit --stacks all;    no_stderr segvexit; want_last segvexit 1
# A crash reporter: its handler restores SIG_DFL and returns, the process
# dies of the re-executed fault; the trace still ends with the crash flush.
traced segvdfl 139 segvdfl --stacks all;    no_stderr segvdfl;  want_last segvdfl 1
# Fatal signals and _exit from a thread: the crash flush's trace.
traced crash 139 crash --stacks all;        no_stderr crash;    want_last crash 1
traced abort 134 abort --stacks all;        no_stderr abort;    want_last abort 1
traced texit 7 texit --stacks all;          no_stderr texit;    want_last texit 1
mn=$(sed -n 's/^gostate .* g=\([0-9]*\) .* from=Running to=Waiting reason=sync%20pthread_join .*/\1/p' "$tmp/texit.sum")
[ -n "$mn" ] || fail "texit: main's pthread_join is not a block"
# Killed by a signal whose default action terminates (kill, a pipe with
# no reader): the trace is finished before the process dies of it.
traced term 143 term --stacks all;          no_stderr term;     want_last term 1
traced sigpipe 141 sigpipe --stacks all;    no_stderr sigpipe;  want_last sigpipe 1
# ... and the program sees the actions it would see untraced (SIG_DFL,
# though ours stand in), an ignored one stays ignored.
traced sigquery 0 sigquery
[ "$(cat "$tmp/sigquery.out1")" = "2=DFL 15=DFL 13=DFL 11=DFL 15=DFL" ] ||
  fail "sigquery: $(cat "$tmp/sigquery.out1")"
env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR bash -c 'trap "" INT TERM; exec "$@"' sh "$run" -o "$tmp/ign.trace" -- "$prog" sigquery > "$tmp/ign.out" ||
  fail "sigquery, ignored: exit status $?"
[ "$(cat "$tmp/ign.out")" = "2=IGN 15=IGN 13=DFL 11=DFL 15=DFL" ] || fail "sigquery, ignored: $(cat "$tmp/ign.out")"
"$check" "$tmp/ign.trace" > /dev/null || fail "sigquery, ignored: trace rejected"

# A flight recorder (GOTRACE_FLIGHT=1): nothing is written while the
# program runs; a crash or a terminating signal writes the recording and
# the generation in progress, with the last events.
traced flightcrash 139 crash --flight 1 --stacks all;  no_stderr flightcrash; want_last flightcrash 1
traced flightterm 143 term --flight 1 --stacks all;    no_stderr flightterm;  want_last flightterm 1
# The flight signal (here SIGUSR2, whose default action would kill the
# program): the recorder writes the file and the program goes on; a
# SIGTERM later writes it again, with the last events.
env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/fsig.trace" --flight 1 \
  --flight-signal USR2 -- sleep 30 > /dev/null 2> "$tmp/fsig.err" &
pid=$!
# Until the program catches SIGUSR2 (bit 11 of SigCgt): the session started.
for _ in $(seq 300); do
  cgt=$(sed -n 's/^SigCgt:\t*//p' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$cgt" ] && [ $(( 0x$cgt & 0x800 )) != 0 ] && break
  sleep 0.05
done
[ -n "$cgt" ] && [ $(( 0x$cgt & 0x800 )) != 0 ] || fail "flight signal: the handler was never installed"
kill -USR2 "$pid"
for _ in $(seq 300); do [ -s "$tmp/fsig.trace" ] && break; sleep 0.05; done
kill -0 "$pid" || fail "flight signal: the program died of it"
cp "$tmp/fsig.trace" "$tmp/fsig1.trace"
"$check" "$tmp/fsig1.trace" > /dev/null || fail "flight signal: dump rejected"
kill -TERM "$pid"
set +e
wait "$pid"; rc=$?
set -e
[ "$rc" = 143 ] || fail "flight signal: exit status $rc after SIGTERM (want 143)"
no_stderr fsig
"$check" "$tmp/fsig.trace" > /dev/null || fail "flight signal: crash dump rejected"
"$tc" -summary "$tmp/fsig.trace" | grep -q "to=Syscall" || fail "flight signal: no syscall (sleep's nanosleep) in the crash dump"
# ... and exiting normally writes nothing.
set +e
env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/flightok.trace" --flight 1 -- "$prog" sigquery > /dev/null 2> "$tmp/flightok.err"; rc=$?
set -e
[ "$rc" = 0 ] || fail "flight, normal exit: exit status $rc"
no_stderr flightok
[ ! -e "$tmp/flightok.trace" ] || fail "flight, normal exit: a trace was written"

# open on a slow path (a FIFO with no writer yet): a syscall of its
# thread, as long as main kept it waiting (60 ms).
traced fifo 11 fifo --stacks all;            no_stderr fifo;     want_last fifo 1
[ "$(cat "$tmp/fifo.out1")" = "fifo: read x" ] || fail "fifo: $(cat "$tmp/fifo.out1")"
sys=$(sed -n 's/^gsum id=[0-9]* name=fifo_opener .* syscall_ns=\([0-9]*\).*/\1/p' "$tmp/fifo.sum")
[ -n "$sys" ] && [ "$sys" -gt 50000000 ] || fail "fifo: fifo_opener's syscall time '$sys' ns (want > 50 ms)"

# sem_post from a SIGALRM handler (1 kHz) while a thread waits in
# sem_wait: the same output and status, a valid trace (the handler's
# unblock may land anywhere in main, the library's own calls included),
# and the waits that main's handler ended drawn as main's unblocks.  With
# CPU samples and 1 ms generations, so that handlers meet the sampler and
# advances.
traced sempost 12 sempost --stacks all --cpu-hz 1000 --advance 1ms; no_stderr sempost; want_last sempost 1
sw=$(sed -n 's/^gsum id=\([0-9]*\) name=sem_waiter .*/\1/p' "$tmp/sempost.sum")
mn=$(sed -n 's/^gsum id=\([0-9]*\) name=main .*/\1/p' "$tmp/sempost.sum")
[ -n "$sw" ] && [ -n "$mn" ] || fail "sempost: no sem_waiter or main goroutine"
n=$(grep -c "^gostate .* id=$sw from=Running to=Waiting reason=sync.Semacquire%20sem_wait " "$tmp/sempost.sum" || true)
[ "$n" -ge 50 ] || fail "sempost: $n sem_wait blocks of 200 waits"
a=$(grep -c "^gostate .* g=$mn .* id=$sw from=Waiting to=Runnable " "$tmp/sempost.sum" || true)
[ "$a" -ge 10 ] || fail "sempost: $a of $n sem_wait blocks unblocked by main's handler"
echo "ok: sempost: $a of $n sem_wait blocks unblocked by main's SIGALRM handler"

# SIGPROF in the masks: the program sees its own view (the same output
# traced with 1 kHz samples), and a thread that blocks every signal while
# it burns 300 ms of CPU still gets its samples (not its sleeping
# neighbours): 300 of them within 5%, under any load.  The preload's
# default source (auto) is perf's CPU clock where perf may count kernel
# time; the tick-driven CPU timers can deliver 3 signals for those 300 ms
# on a loaded machine (BENCHMARKS.md, "CPU samples under load"), so an
# exact count needs perf: the test says so rather than accept less.
traced masks 13 masks --cpu-hz 1000;         no_stderr masks;    want_last masks 1
grep -q "^masks: thread inherits blocked$" "$tmp/masks.out1" || fail "masks: $(cat "$tmp/masks.out1")"
[ "$(cat "$tmp/masks.notes")" = "cpu profiling: auto: perf-event CPU clocks" ] ||
  fail "masks: the default source is not perf events (needs root, CAP_PERFMON or kernel.perf_event_paranoid <= 1): $(cat "$tmp/masks.notes")"
bu=$(sed -n 's/^gsum id=\([0-9]*\) name=burner .*/\1/p' "$tmp/masks.sum")
[ -n "$bu" ] || fail "masks: no burner goroutine"
n=$(grep -c "^sample .* g=$bu " "$tmp/masks.sum" || true)
[ "$n" -ge 285 ] && [ "$n" -le 315 ] || fail "masks: $n CPU samples on the burner (300 ms of CPU at 1 kHz)"
echo "ok: masks: $n CPU samples on the burner, which blocks every signal"

# sysv_signal, bsd_signal, sigset: the program sees its own actions, its
# handler runs; set back to SIG_DFL, a SIGTERM finishes the trace first.
traced sigvars 143 sigvars --stacks all;    no_stderr sigvars;  want_last sigvars 1
[ "$(cat "$tmp/sigvars.out1")" = "TERM=handler HUP=handler INT=handler
handled 1, TERM=DFL
hold returned handler, then HOLD, INT=DFL" ] || fail "sigvars: $(cat "$tmp/sigvars.out1")"

# Its own SIGPROF handler and ITIMER_PROF: it must get no SIGPROF of ours
# (plrobust prints how many arrive before its timer and after it), and
# with our sampling configured (GOTRACE_CPU_HZ) our sampling stops with
# exactly one line on stderr; without, nothing is printed.
traced prof 0 prof;                          no_stderr prof;     want_last prof 1
for src in setitimer timer perf; do
  traced prof-$src 0 prof --cpu-hz 1000 --cpu $src
  [ "$(cat "$tmp/prof-$src.err")" = "gotrace: CPU sampling off: the program installs its own SIGPROF handler" ] ||
    fail "prof-$src: stderr: $(cat "$tmp/prof-$src.err")"
  grep -q "^prof: before the timer 0, after it 0, handler ours$" "$tmp/prof-$src.out1" ||
    fail "prof-$src: $(cat "$tmp/prof-$src.out1")"
  want_last prof-$src 1
done

# vfork+exec, posix_spawn, system(): the parent's trace; with %p every
# process's trace is valid.
traced spawn 8 spawn --stacks all;           no_stderr spawn;    want_last spawn 1
[ "$(cat "$tmp/spawn.out1")" = "child vfork
child posix_spawn
child system
spawn done" ] || fail "spawn: output $(cat "$tmp/spawn.out1")"
set +e
env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/each.%p.trace" -- "$prog" spawn > "$tmp/each.out"; rc=$?
set -e
[ "$rc" = 8 ] || fail "spawn %p: exit status $rc"
cmp "$tmp/spawn.out0" "$tmp/each.out" || fail "spawn %p: output differs"
set -- "$tmp"/each.*.trace
[ $# -ge 4 ] || fail "spawn %p: $# traces (want the parent's and 3 children's at least)"
"$check" "$@" > /dev/null || fail "spawn %p: a trace rejected"
found=0
for f in "$@"; do "$tc" -summary "$f" | grep -q " label=last$" && found=$((found + 1)); done
[ $found = 1 ] || fail "spawn %p: $found traces with the parent's thread (want 1)"

# A daemon closes every descriptor (the trace's and the sampler's perf
# events included) and goes on: its trace is complete, and the main
# thread's 100 ms of CPU after the closes are sampled (the perf event
# armed at the start is still open).
traced daemon 9 daemon --stacks all --cpu-hz 1000; no_stderr daemon; want_last daemon 2
n=$(grep -c "^sample .*burn_100ms" "$tmp/daemon.sum" || true)
[ "$n" -ge 95 ] && [ "$n" -le 110 ] || fail "daemon: $n CPU samples in burn_100ms (100 ms of CPU at 1 kHz)"
echo "ok: daemon: $n CPU samples after closing every descriptor"
# dup2 and dup3 onto the main thread's perf event (the one event open at
# that point): the program gets the numbers it asked for (plrobust checks
# /proc/self/fd), the event moves each time, and its 100 ms of CPU after
# the calls are sampled.  A dup2 that fails leaves the number free.
traced dup2 14 dup2 --stacks all --cpu-hz 1000; no_stderr dup2; want_last dup2 1
[ "$(cat "$tmp/dup2.count")" = "1 1 1" ] || fail "dup2: perf events found before each call: $(cat "$tmp/dup2.count") (want 1 1 1)"
n=$(grep -c "^sample .*burn_100ms" "$tmp/dup2.sum" || true)
[ "$n" -ge 95 ] && [ "$n" -le 110 ] || fail "dup2: $n CPU samples in burn_100ms (100 ms of CPU at 1 kHz)"
echo "ok: dup2: $n CPU samples after dup2 and dup3 onto the thread's perf event"
# dup2 onto the trace's own descriptor, 40 times 2 ms apart, while a
# thread's syscalls and 1 ms generations of 4 KiB batches keep the flusher
# writing: the program's file gets exactly its 40 lines and none of the
# trace's bytes, and the trace (judged by traced) is whole: its last
# events and the 100 ms of CPU after the calls.
traced dup2trace 15 dup2trace --stacks all --cpu-hz 1000 --advance 1ms --buffer-size 4k
no_stderr dup2trace; want_last dup2trace 1
[ "$(cat "$tmp/dup2trace.count")" = "40 40" ] || fail "dup2trace: rounds that found the trace's descriptor: $(cat "$tmp/dup2trace.count") (want 40 40)"
cmp -s "$tmp/dup2trace.victim" <(seq 0 39 | sed 's/^/round /') ||
  fail "dup2trace: the program's file holds $(wc -c < "$tmp/dup2trace.victim") bytes, not its 40 lines"
n=$(grep -c "^sample .*burn_100ms" "$tmp/dup2trace.sum" || true)
[ "$n" -ge 95 ] && [ "$n" -le 110 ] || fail "dup2trace: $n CPU samples in burn_100ms (100 ms of CPU at 1 kHz)"
echo "ok: dup2trace: $n CPU samples after 40 dup2s onto the trace's descriptor"
# dlopen of a library whose function creates threads: goroutines named
# after its start routine.
traced dlopen 10 dlopen --stacks all;        no_stderr dlopen;   want_last dlopen 1
c=$(grep -c "^gsum id=[0-9]* name=pldl_worker " "$tmp/dlopen.sum" || true)
[ "$c" = 2 ] || fail "dlopen: $c goroutines named pldl_worker (want 2)"
echo "ok"
