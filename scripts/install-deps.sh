#!/usr/bin/env bash
# Installs everything gotrace needs on a fresh Debian 12 (bookworm) machine:
# the C build dependencies, Go 1.23 from bookworm-backports (the validator and
# `go tool trace`), and the newest Go from trixie-backports unpacked into a
# private directory (never installed on bookworm).
#
# Package sources reuse the mirror URI already configured on this machine, so
# no registry host is named here.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The mirror URI of the machine's own Debian "bookworm" suite.
mirror_uri() {
  local uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas: take the URIs of a stanza whose Suites has bookworm.
    uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && !/security/ {
                 match($0, /URIs:[ \t]*[^ \t\n]+/);
                 if (RSTART) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "install-deps: no bookworm mirror in apt sources" >&2; exit 1; }
  printf '%s\n' "$uri"
}

MIRROR=$(mirror_uri)
LIST=/etc/apt/sources.list.d/gotrace-backports.list
want="deb $MIRROR bookworm-backports main"
if ! grep -qsF "$want" "$LIST"; then
  echo "$want" | $SUDO tee "$LIST" >/dev/null
  NEED_UPDATE=1
fi

# trixie-backports lives in a private apt tree: we only download from it.
TRIXIE_DIR=/var/cache/gotrace-apt-trixie
$SUDO mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/archives/partial" "$TRIXIE_DIR/etc/preferences.d"
echo "deb $MIRROR trixie-backports main" | $SUDO tee "$TRIXIE_DIR/etc/sources.list" >/dev/null
echo "deb $MIRROR trixie main" | $SUDO tee -a "$TRIXIE_DIR/etc/sources.list" >/dev/null
TRIXIE_APT=(-o Dir::Etc::SourceList="$TRIXIE_DIR/etc/sources.list"
            -o Dir::Etc::SourceParts=/nonexistent
            -o Dir::Etc::PreferencesParts="$TRIXIE_DIR/etc/preferences.d"
            -o Dir::State::Lists="$TRIXIE_DIR/lists"
            -o Dir::Cache::Archives="$TRIXIE_DIR/archives"
            -o Dir::State::Status=/dev/null
            -o APT::Get::List-Cleanup=0)

PKGS=(build-essential cmake pkg-config liburcu-dev libcmocka-dev libunwind-dev libdw-dev libelf-dev clang-14 libclang-rt-14-dev libgoogle-perftools-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev pigz xz-utils)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
dpkg -s golang-1.23-go >/dev/null 2>&1 || NEED_GO=1
if [ ${#missing[@]} -gt 0 ] || [ -n "${NEED_GO:-}" ] || [ -n "${NEED_UPDATE:-}" ]; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [ -n "${NEED_GO:-}" ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports golang-1.23-go
fi

# Newest Go in trixie-backports, unpacked under third_party-free cache dir.
GO_NEW_ROOT=${GOTRACE_GO_NEW_ROOT:-/var/cache/gotrace-go-new}
if [ ! -x "$GO_NEW_ROOT/current/bin/go" ]; then
  $SUDO apt-get "${TRIXIE_APT[@]}" update -qq
  newest=$(apt-cache "${TRIXIE_APT[@]}" pkgnames golang- 2>/dev/null \
           | grep -E '^golang-1\.[0-9]+-go$' | sed -E 's/golang-1\.([0-9]+)-go/\1/' | sort -n | tail -1)
  [ -n "$newest" ] || { echo "install-deps: no golang-1.N-go in trixie-backports" >&2; exit 1; }
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get "${TRIXIE_APT[@]}" download "golang-1.$newest-go" "golang-1.$newest-src" )
  $SUDO rm -rf "$GO_NEW_ROOT/unpack"
  $SUDO mkdir -p "$GO_NEW_ROOT/unpack"
  for d in "$tmp"/*.deb; do $SUDO dpkg -x "$d" "$GO_NEW_ROOT/unpack"; done
  $SUDO ln -sfn "$GO_NEW_ROOT/unpack/usr/lib/go-1.$newest" "$GO_NEW_ROOT/current"
  rm -rf "$tmp"
fi
echo "install-deps: ok (go1.23: /usr/lib/go-1.23, newest: $(readlink -f "$GO_NEW_ROOT/current"))"
