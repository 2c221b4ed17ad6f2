#!/usr/bin/env bash
# test_preload.sh BUILD_DIR PLPROG PLSTATIC: issue 12's preload library
# and launcher on our own program (plprog.c).  Each run under gotrace-run
# must print the same bytes and exit with the same status as the untraced
# run, its trace must pass every judge (GOTRACE_CHECK_TRACE), and the Go
# 1.23 checker's summary must show: one goroutine per created thread,
# grouped by its start routine, created by its creator with its stack,
# named by pthread_setname_np; every wrapped wait as a block with its sync
# reason; the contended mutex, the semaphore and the barrier woken by
# another goroutine (the unlocking / posting / last arriving one);
# pthread_join woken by the exiting thread; the pipe read as a syscall.  Plain builds only: a sanitizer
# runtime must be the first library loaded, which LD_PRELOAD would break.
set -euo pipefail
build=$1 prog=$2 static=$3
check=${GOTRACE_CHECK_TRACE:?GOTRACE_CHECK_TRACE is not set (run through ctest)}
tc=${GOTRACE_TRACECHECK_DIR:?GOTRACE_TRACECHECK_DIR is not set}/tracecheck-go1.23
[ -x "$tc" ] || { echo "FATAL: $tc missing (Go 1.23 checker)"; exit 1; }
run=$build/gotrace-run
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gotrace-preload.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# --help lists an option for every variable of gotrace_start_from_env's
# table (gotrace.h).
"$run" --help > "$tmp/help"
vars=$(sed -n 's/^ \*   \(GOTRACE_[A-Z_]*\) .*/\1/p' "$(dirname "$0")/../../include/gotrace.h")
[ "$(echo "$vars" | wc -l)" -ge 14 ] || fail "gotrace.h's variable table not found"
for v in $vars; do
  grep -q -- "--[a-z-]* V *$v " "$tmp/help" || fail "--help has no option for $v"
done
# A statically linked program is refused with a clear message.
if env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/static.trace" -- "$static" > /dev/null 2> "$tmp/static.err"; then
  fail "statically linked program not refused"
fi
grep -q "statically linked" "$tmp/static.err" || fail "refusal message: $(cat "$tmp/static.err")"
[ ! -e "$tmp/static.trace" ] || fail "a trace was written for the static program"

# A setuid program is refused (the loader would drop LD_PRELOAD).
cp "$prog" "$tmp/suid" && chmod u+s "$tmp/suid"
if env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/suid.trace" -- "$tmp/suid" > /dev/null 2> "$tmp/suid.err"; then
  fail "setuid program not refused"
fi
grep -q "setuid" "$tmp/suid.err" || fail "setuid refusal message: $(cat "$tmp/suid.err")"
# Bad configuration: one line on stderr, the program runs untraced with
# its own output and status.
"$prog" > "$tmp/out0" || true
for bad in "GOTRACE_CPUHZ=100 GOTRACE_OUT=$tmp/bad.trace" "GOTRACE_OUT=$tmp/no/such/dir/t.trace"; do
  set +e
  env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR $bad LD_PRELOAD="$build/libgotrace-preload.so" \
    "$prog" > "$tmp/out1" 2> "$tmp/err"; rc=$?
  set -e
  [ "$rc" = 3 ] || fail "bad config ($bad): exit status $rc"
  cmp "$tmp/out0" "$tmp/out1" || fail "bad config ($bad): output differs"
  [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q "^gotrace: tracing off: " "$tmp/err" ||
    fail "bad config ($bad): stderr: $(cat "$tmp/err")"
done

# exec: the setitimer timer (armed at 1 kHz by the shell's session), and
# the per-thread sources (perf events, timers), must not outlive the exec
# (a SIGPROF would kill the new image); without %p only the first process
# is traced, and its trace is complete.
for src in setitimer timer perf auto; do
  set +e
  env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/exec.trace" --cpu-hz 1000 --cpu $src -- \
    sh -c 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec "$0"' "$prog" > "$tmp/out1"; rc=$?
  set -e
  [ "$rc" = 3 ] || fail "exec ($src): exit status $rc"
  cmp "$tmp/out0" "$tmp/out1" || fail "exec ($src): output differs"
  "$check" "$tmp/exec.trace" > /dev/null || fail "exec ($src): the shell's trace rejected"
done
# With %p each process writes its own trace: the shell and the program.
env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/each.%p.trace" --cpu-hz 1000 -- \
  sh -c '"$0"; true' "$prog" > /dev/null || true
set -- "$tmp"/each.*.trace
[ $# = 2 ] || fail "%p: $# trace files (want 2: sh and the program)"
"$check" "$@" > /dev/null || fail "%p: a trace rejected"
found=0
for f in "$@"; do "$tc" -summary "$f" | grep -q "^gsum .* name=lock_holder " && found=1; done
[ $found = 1 ] || fail "%p: the program's trace lacks its threads"

for mode in plain hostile; do
  set +e
  "$prog" $mode > "$tmp/out0"; rc0=$?
  env -u GOTRACE_CHECK_TRACE -u GOTRACE_TRACECHECK_DIR "$run" -o "$tmp/$mode.trace" --stacks all -- "$prog" $mode > "$tmp/out1"; rc1=$?
  set -e
  [ "$rc0" = 3 ] || fail "$mode: untraced exit status $rc0"
  [ "$rc1" = "$rc0" ] || fail "$mode: exit status $rc1 traced, $rc0 untraced"
  cmp "$tmp/out0" "$tmp/out1" || fail "$mode: output differs"
  "$check" "$tmp/$mode.trace" > /dev/null || fail "$mode: trace rejected"
  "$tc" -summary "$tmp/$mode.trace" > "$tmp/sum"
  c=$(grep -c "^gsum " "$tmp/sum")
  want=5; [ $mode = hostile ] && want=6 # + the cancelled sleeper
  [ "$c" = $want ] || fail "$mode: $c goroutines (want $want: main and the threads)"
  if [ $mode = hostile ]; then
    # It ends with _exit: the preload finishes the trace with the
    # async-signal-safe crash flush, which names goroutines only from
    # symbols already resolved (none here), so no names to check; the
    # events are all there.
    echo "ok: $mode"
    continue
  fi
  for n in main lock_holder lock_waiter cond_waiter pipe_reader; do
    c=$(grep -c "^gsum id=[0-9]* name=$n " "$tmp/sum" || true)
    [ "$c" = 1 ] || fail "$mode: $c goroutines named $n (want 1)"
  done
  grep -q "label=holder" "$tmp/sum" || fail "$mode: pthread_setname_np label missing"
  grep -q "label=waiter" "$tmp/sum" || fail "$mode: pthread_setname_np label missing"
  # Named by their creator: the label is on the named thread's goroutine.
  for pair in cond_waiter:condw pipe_reader:piper; do
    id=$(sed -n "s/^gsum id=\([0-9]*\) name=${pair%%:*} .*/\1/p" "$tmp/sum")
    grep -q "^label .* g=$id .* label=${pair##*:}\$" "$tmp/sum" ||
      fail "$mode: ${pair%%:*} (g $id) not labelled ${pair##*:} by its creator's pthread_setname_np"
  done
  for r in sync.Mutex.Lock sync.Cond.Wait sync.RWMutex.RLock "sync.WaitGroup.Wait%20pthread_barrier" \
           "sync.Semacquire%20sem_wait" "sync%20pthread_join"; do
    grep -q "to=Waiting reason=$r " "$tmp/sum" || fail "$mode: no block with reason $r"
  done
  # Unblocks by another goroutine (g= the waker, id= the woken) of
  # goroutines whose last block was a mutex / a join.
  awk -v want=sync.Mutex.Lock '
    $1 == "gostate" { g = $4; id = $7; sub("g=", "", g); sub("id=", "", id)
      if ($9 == "to=Waiting") { r = $10; sub("reason=", "", r); last[id] = r }
      if ($8 == "from=Waiting" && g != "-1" && g != id && last[id] == want) ok = 1 }
    END { exit !ok }' "$tmp/sum" || fail "$mode: no mutex waiter woken by another goroutine"
  # sem_post's unblock (the async-signal-safe one): main posts once the
  # waiter sleeps in sem_wait.
  awk -v want="sync.Semacquire%20sem_wait" '
    $1 == "gostate" { g = $4; id = $7; sub("g=", "", g); sub("id=", "", id)
      if ($9 == "to=Waiting") { r = $10; sub("reason=", "", r); last[id] = r }
      if ($8 == "from=Waiting" && g != "-1" && g != id && last[id] == want) ok = 1 }
    END { exit !ok }' "$tmp/sum" || fail "$mode: sem_wait not woken by the posting goroutine"
  # The barrier's last arrival (lock_waiter) releases lock_holder.
  lh=$(sed -n 's/^gsum id=\([0-9]*\) name=lock_holder .*/\1/p' "$tmp/sum")
  lw=$(sed -n 's/^gsum id=\([0-9]*\) name=lock_waiter .*/\1/p' "$tmp/sum")
  awk -v lh="id=$lh" -v lw="g=$lw" -v want="sync.WaitGroup.Wait%20pthread_barrier" '
    $1 == "gostate" && $7 == lh { if ($9 == "to=Waiting") { r = $10; sub("reason=", "", r); last = r }
      if ($8 == "from=Waiting" && $4 == lw && last == want) ok = 1 }
    END { exit !ok }' "$tmp/sum" || fail "$mode: the barrier's waiter not released by its last arrival"
  pr=$(sed -n 's/^gsum id=\([0-9]*\) name=pipe_reader .*/\1/p' "$tmp/sum")
  mn=$(sed -n 's/^gsum id=\([0-9]*\) name=main .*/\1/p' "$tmp/sum")
  # Created by their creator (main's goroutine), with main's stack.
  for n in lock_holder lock_waiter cond_waiter pipe_reader; do
    id=$(sed -n "s/^gsum id=\([0-9]*\) name=$n .*/\1/p" "$tmp/sum")
    grep -q "^gostate .* g=$mn .* id=$id from=NotExist to=Runnable .* stack=$n evstack=main\$" "$tmp/sum" ||
      fail "$mode: $n (g $id) not created by main's goroutine with main's stack"
  done
  grep -q "^gostate .* g=$pr .* id=$mn from=Waiting to=Runnable" "$tmp/sum" ||
    fail "$mode: main's pthread_join not woken by the exiting pipe_reader"
  grep -q "^gostate .* g=$pr .* id=$pr from=Running to=Syscall" "$tmp/sum" ||
    fail "$mode: pipe_reader's read is not a syscall"
  sys=$(sed -n 's/^gsum id=[0-9]* name=pipe_reader .* syscall_ns=\([0-9]*\).*/\1/p' "$tmp/sum")
  [ "$sys" -gt 50000000 ] || fail "$mode: pipe_reader's syscall time $sys ns (main writes 60 ms after it sits in read)"
  grep -q "^gostate .* id=$mn from=Running to=Syscall" "$tmp/sum" || fail "$mode: main's nanosleep not a syscall"
  echo "ok: $mode"
done
