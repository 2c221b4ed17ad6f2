# shellcheck shell=bash disable=SC2034
# Sourced by the tracecheck scripts: toolchain and cache locations.
# Overridable: GOTRACE_GO123 (Go 1.23 GOROOT), GOTRACE_GO_NEW_ROOT (dir with
# current -> newest GOROOT, as made by install-deps.sh), GOTRACE_CACHE.
export GOTOOLCHAIN=local
export GOFLAGS=
unset GOROOT
GO123_ROOT=${GOTRACE_GO123:-/usr/lib/go-1.23}
GONEW_ROOT=${GOTRACE_GO_NEW_ROOT:-/var/cache/gotrace-go-new}/current
GO123=$GO123_ROOT/bin/go
GONEW=$GONEW_ROOT/bin/go
GOTRACE_CACHE_DIR=${GOTRACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gotrace}
TRACECHECK_DIR=$GOTRACE_CACHE_DIR/tracecheck
# One Go build cache for everything we build (keys include the toolchain).
export GOCACHE=$GOTRACE_CACHE_DIR/gocache

# require_go NAME GOBIN [VERSION-PREFIX]: fail loudly if the toolchain is unusable.
require_go() {
  local name=$1 gobin=$2 want=${3:-} v
  if [ ! -x "$gobin" ]; then
    echo "FATAL: $name toolchain missing: $gobin not found (run scripts/install-deps.sh)" >&2
    exit 1
  fi
  if ! v=$("$gobin" env GOVERSION 2>&1); then
    echo "FATAL: $name toolchain at $gobin does not run: $v" >&2
    exit 1
  fi
  if [ -n "$want" ] && [[ "$v" != "$want"* ]]; then
    echo "FATAL: $name toolchain at $gobin is $v, expected $want*" >&2
    exit 1
  fi
}
