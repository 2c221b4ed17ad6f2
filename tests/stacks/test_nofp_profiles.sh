#!/usr/bin/env bash
# test_nofp_profiles.sh PROGRAM WORKDIR: issue 11 part 4.  PROGRAM
# (nofp_profiles.c, built -O2 -fomit-frame-pointer, default options) writes
# a trace; every judge must accept it (scripts/check-trace.sh); then
# `go tool trace -pprof=sync` and `-pprof=syscall` must give profiles in
# which `go tool pprof` shows the waiting functions by name:
# nofp_lock_worker right below take_lock (the caller of the contended
# gotrace_mutex_lock), nofp_syscall_worker right below sleep_in_syscall.
# A frame-pointer walk cannot see the workers (their frames have no frame
# pointer); the DWARF unwind must.  Go missing is a failure, never a skip.
#
# Toolchains: -pprof=sync with Go 1.23 and the newest Go; -pprof=syscall
# with the newest only.  Go 1.23's go tool trace ends a profiled interval
# only at a transition that has a stack, and nothing that ends a syscall
# has one in the format (GoSyscallEnd, GoSyscallEndBlocked): its syscall
# profile holds only syscalls followed later by a block or a stop of the
# same goroutine, measured to that point -- never this program's.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=$(cd "$HERE/../../scripts" && pwd)
. "$SCRIPTS/gotrace-env.sh"
require_go "Go 1.23" "$GO123" go1.23
require_go "newest Go" "$GONEW"

prog=$1
work=$2/nofp_profiles.$$
rm -rf "$work"
mkdir -p "$work" || exit 1
trap 'rm -rf "$work"' EXIT
fail() {
  echo "test_nofp_profiles: FAIL: $*" >&2
  exit 1
}

"$prog" "$work/t.trace" || fail "the program failed"
"$SCRIPTS/check-trace.sh" "$work/t.trace" || fail "a judge rejected the trace"

# profile GO KIND WORKER HELPER: the profile of KIND (by the go command GO)
# has samples, and in one of its stacks WORKER is the frame right below
# HELPER (its caller).
profile() {
  local go=$1 kind=$2 worker=$3 helper=$4
  "$go" tool trace -pprof="$kind" "$work/t.trace" >"$work/$kind.pb" 2>"$work/$kind.err" ||
    { cat "$work/$kind.err" >&2; fail "go tool trace -pprof=$kind failed"; }
  [ -s "$work/$kind.pb" ] || fail "-pprof=$kind: empty profile"
  "$go" tool pprof -top -nodecount=50 "$work/$kind.pb" >"$work/$kind.top" 2>&1 ||
    { cat "$work/$kind.top" >&2; fail "go tool pprof -top ($kind) failed"; }
  "$go" tool pprof -traces "$work/$kind.pb" >"$work/$kind.traces" 2>&1 ||
    { cat "$work/$kind.traces" >&2; fail "go tool pprof -traces ($kind) failed"; }
  echo "--- $("$go" env GOVERSION) tool pprof -top -nodecount=50 ($kind)"
  cat "$work/$kind.top"
  grep -q "$worker" "$work/$kind.top" || { cat "$work/$kind.traces"; fail "-pprof=$kind: no $worker in -top"; }
  # -traces prints each stack leaf first, one frame a line (the first
  # after the sample's value): the worker must follow the helper.
  awk -v h="$helper" -v w="$worker" '
    { f = $NF }
    prev == h && f == w { ok = 1 }
    { prev = f }
    END { exit ok ? 0 : 1 }' "$work/$kind.traces" ||
    { cat "$work/$kind.traces"; fail "-pprof=$kind: $worker is not the caller of $helper"; }
}
profile "$GO123" sync nofp_lock_worker take_lock
# Names from separate debug files (README, "Names in stripped system
# libraries"): only where glibc's is installed (libc6-dbg); not required.
libc=$(ldd "$prog" | awk '$1 ~ /^libc\.so/ {print $3}')
bid=$(readelf -n "$libc" 2>/dev/null | awk '/Build ID/ {print $3}')
if [ -n "$bid" ] && [ -f "/usr/lib/debug/.build-id/${bid:0:2}/${bid:2}.debug" ]; then
  grep -qw start_thread "$work/sync.top" ||
    fail "libc's debug file is installed, but start_thread (not in .dynsym) is not named"
  echo "libc's internal start_thread named from /usr/lib/debug/.build-id"
else
  echo "(no debug file for $libc: its internal frames stay module+offset)"
fi
profile "$GONEW" sync nofp_lock_worker take_lock
profile "$GONEW" syscall nofp_syscall_worker sleep_in_syscall
echo "test_nofp_profiles: ok"
