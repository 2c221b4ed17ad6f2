#!/usr/bin/env bash
# check-trace.sh FILE...: runs every judge on each trace file and exits
# non-zero if any judge rejects any file. Judges:
#   tracecheck-go1.23   reader + strict validator of Go 1.23
#   tracecheck-new      reader + strict validator of the newest Go
#   go1.23 tool trace -d=1        (Go 1.23's trace tool, parsed-event dump)
#   <newest> tool trace -d=parsed (the newest trace tool, parsed-event dump)
# Builds the checkers first (scripts/build-tracecheck.sh, cached); the newest
# `go tool trace` is built on first use into the same GOCACHE.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/gotrace-env.sh"

if [ $# -eq 0 ]; then
  echo "usage: check-trace.sh FILE..." >&2
  exit 2
fi
buildlog=$(mktemp)
mapfile -t BINS < <("$HERE/build-tracecheck.sh" 2>"$buildlog")
if [ ${#BINS[@]} -ne 2 ] || [ ! -x "${BINS[0]}" ] || [ ! -x "${BINS[1]}" ]; then
  cat "$buildlog" >&2
  echo "check-trace: FATAL: building tracecheck failed" >&2
  rm -f "$buildlog"
  exit 1
fi
rm -f "$buildlog"
GONEW_VER=$(cat "$TRACECHECK_DIR/tracecheck-new.version")

errf=$(mktemp); trap 'rm -f "$errf"' EXIT
bad=0
# judge NAME FILE CMD...: run CMD, report rejection (exit status != 0, or a
# "proceeding despite an error" message from go tool trace).
judge() {
  local name=$1 file=$2; shift 2
  if "$@" >/dev/null 2>"$errf" && ! grep -q "Encountered error" "$errf"; then
    return 0
  fi
  echo "check-trace: REJECTED by $name: $file" >&2
  sed 's/^/    /' "$errf" | head -40 >&2
  bad=1
  return 1
}
for f in "$@"; do
  if [ ! -r "$f" ]; then
    echo "check-trace: cannot read $f" >&2
    bad=1
    continue
  fi
  ok=1
  judge "tracecheck (go1.23)" "$f" "${BINS[0]}" "$f" || ok=0
  judge "tracecheck ($GONEW_VER)" "$f" "${BINS[1]}" "$f" || ok=0
  judge "go1.23 tool trace -d=1" "$f" "$GO123" tool trace -d=1 "$f" || ok=0
  judge "$GONEW_VER tool trace -d=parsed" "$f" "$GONEW" tool trace -d=parsed "$f" || ok=0
  [ $ok = 1 ] && echo "check-trace: ok: $f"
done
exit $bad
