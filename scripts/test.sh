#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every
# test three times: -Werror build, ASan+UBSan build, TSan build; then the
# stress stage repeats the concurrency-sensitive tests in each build under
# background load (scripts/stress.sh).  Every trace the tests produce is
# judged by Go 1.23's and the newest Go's validators.
#   scripts/test.sh            all three builds
#   GOTRACE_TEST_BUILDS="plain" scripts/test.sh   a subset
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/install-deps.sh
BUILDS=${GOTRACE_TEST_BUILDS:-"plain asan tsan"}
JOBS=$(nproc)
fail=0
for b in $BUILDS; do
  case $b in
    plain) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    asan)  flags=(-DCMAKE_BUILD_TYPE=Debug -DGOTRACE_SANITIZE=address,undefined) ;;
    tsan)  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGOTRACE_SANITIZE=thread) ;;
    *) echo "unknown build $b" >&2; exit 2 ;;
  esac
  dir=build-test-$b
  echo "=== $b build ($dir)"
  cmake -S . -B "$dir" -DGOTRACE_WERROR=ON "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$JOBS" >/dev/null
  # TMPDIR inside the build dir: traces are kept for inspection on failure.
  mkdir -p "$dir/tmp"
  if ! (cd "$dir" && TMPDIR="$PWD/tmp" ASAN_OPTIONS=detect_leaks=1 \
        TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=7 suppressions=$ROOT/tests/tsan.supp" \
        UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$JOBS"); then
    fail=1
  fi
done
# Stress stage (scripts/stress.sh): the concurrency-sensitive tests again,
# under background CPU load, small buffers and 1 ms advances, in every
# build.  GOTRACE_STRESS_RUNS="plain:N asan:N tsan:N" sets the repetitions.
STRESS_RUNS=${GOTRACE_STRESS_RUNS:-"plain:1 asan:1 tsan:1"}
for spec in $STRESS_RUNS; do
  b=${spec%%:*}; n=${spec#*:}
  case " $BUILDS " in *" $b "*) ;; *) continue ;; esac
  [ "$n" -gt 0 ] 2>/dev/null || continue
  echo "=== stress: $b build, $n run(s)"
  bash scripts/stress.sh "build-test-$b" "$n" || fail=1
done
exit $fail
