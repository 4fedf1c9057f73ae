#!/usr/bin/env bash
# Usage: bash .ci/wine-tests.sh        (.ci/test.sh runs it; root or not)
#        bash .ci/wine-tests.sh --test reliability crash    (one target, a filter)
#
# The Windows tier: the x86_64-pc-windows-gnu build of the tests, run under
# Wine (cargo's runner for that target), with the Windows Credential
# Manager as the real backend (Wine's, kept in the prefix's registry):
#   - the unit tests, the binary's tests, tests/fast and the doc tests;
#   - tests/cli, tests/reliability and tests/store, whole: on the
#     Credential Manager every command, --refresh-with and its single
#     flight over 8 processes, nothing created outside the store directory,
#     names NTFS folds or reserves, tokens split into 2560-byte
#     credentials, writers killed mid-save; the sealed store on key files;
#     the memory backend.
# What does not apply is not there or says so: tests on Linux's backends
# print "NOT RUN … does not exist on this platform", Unix-only tests
# (shells, modes, LD_PRELOAD, seccomp, keyutils) are not compiled, known
# Windows bugs are ignored with the reason. Not run at all:
# tests/keyutils_quota (Linux only) and tests/zeroize_alloc (its HTTP
# scenario needs python3, and under its checking allocator CredReadW's
# error code is lost, so the Credential Manager cannot be measured).
#
# It installs wine, wine64 (and its preloader) and the MinGW C compiler if
# missing, makes a fresh prefix in a private temp dir (with its own HOME,
# so Wine's links from Desktop, Documents… point there), adds the
# bcryptprimitives.dll stand-in Wine 8 needs (.ci/wine/bcryptprimitives.c;
# skipped, saying so, on a Wine that has its own), and removes everything
# at exit, wineserver included. TMPDIR points into that dir for everything
# (Wine's server socket dir and the windows-gnu linker's temp files would
# land in /tmp). It prints how long each phase took.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0

say() { printf 'wine-tests: %s\n' "$*"; }
started=$SECONDS
phase_start=$SECONDS
timings=()
phase() {   # phase NAME: the time since the previous phase, under NAME
  timings+=("$(printf '%-8s %4ds' "$1" $((SECONDS - phase_start)))")
  phase_start=$SECONDS
}

# --- packages ----------------------------------------------------------
# binary (or file) -> package that provides it
declare -A WINE_DEPS=(
  [wine]=wine
  [wineserver]=wine
  [wineboot]=wine
  [/usr/lib/wine/wine64]=wine64
  # Reserves the address ranges Windows images need before Linux's loader
  # places libraries at random; without it (Debian only suggests it) a
  # process now and then fails to start (CreateProcess: ERROR_INTERNAL_ERROR).
  [/usr/lib/wine/wine64-preloader]=wine64-preloader
  [x86_64-w64-mingw32-gcc]=gcc-mingw-w64-x86-64
)
missing=()
for bin in "${!WINE_DEPS[@]}"; do
  if [ "${bin#/}" != "$bin" ]; then
    [ -e "$bin" ] || missing+=("${WINE_DEPS[$bin]}")
  else
    command -v "$bin" >/dev/null 2>&1 || missing+=("${WINE_DEPS[$bin]}")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing missing packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
rustup target list --installed | grep -qx x86_64-pc-windows-gnu ||
  rustup target add x86_64-pc-windows-gnu

# --- a private temp dir, removed at exit ---------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/rctoken-ci.wine.XXXXXX")"
# No Mono or Gecko installer at wineboot; no winedbg for a crashing process
# (it would wait for a debugger forever: a writer killed mid-startup under
# Wine can fault on its way out).
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;winedbg.exe=d"
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR" "$work/home"
cleanup() {
  local rc=$?
  wineserver -k >/dev/null 2>&1 || true
  wineserver -w >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the prefix ------------------------------------------------------------
say "$(wine --version) in a fresh prefix ($WINEPREFIX)"
HOME="$work/home" wineboot -i >"$work/wineboot.log" 2>&1 || {
  cat "$work/wineboot.log" >&2
  say "wineboot failed"
  exit 1
}
wineserver -w
system32="$WINEPREFIX/drive_c/windows/system32"
if [ -e "$system32/bcryptprimitives.dll" ]; then
  say "not building the bcryptprimitives.dll stand-in: this Wine has its own"
else
  say "this Wine has no bcryptprimitives.dll (Rust's std needs its ProcessPrng): building the stand-in"
  x86_64-w64-mingw32-gcc -O2 -s -shared -o "$system32/bcryptprimitives.dll" \
    .ci/wine/bcryptprimitives.c
fi
phase prefix

# --- build -----------------------------------------------------------------
target=(--all-features --target x86_64-pc-windows-gnu)
cargo test "${target[@]}" --no-run --lib --bins \
  --test fast --test cli --test reliability --test store
phase build
# A Rust program that cannot load (no ProcessPrng) exits 53 and says nothing.
exe="${CARGO_TARGET_DIR:-target}/x86_64-pc-windows-gnu/debug/rctoken.exe"
version="$(wine "$exe" --version)" || {
  say "rctoken.exe does not run under this Wine (exit $?; a missing DLL?)"
  exit 1
}
say "runs: $version"

# --- run -------------------------------------------------------------------
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# A hang fails the step instead of holding CI (the EXIT trap then kills
# every Wine process of the prefix).
limit="${RCTOKEN_CI_WINE_TIMEOUT:-600}"
run() { timeout -k 10 "$limit" "$@"; }
# 64 cases per property, not 256: under Wine they cost four times as much,
# and what differs on Windows (paths, files, locks) needs no more; the
# Linux tiers run all 256.
if [ $# -gt 0 ]; then   # a developer's run of one target: cargo's arguments
  run cargo test "${target[@]}" "$@"
  say "passed in $((SECONDS - started))s"
  exit 0
fi
PROPTEST_CASES=64 run cargo test "${target[@]}" --lib --bins --test fast
run cargo test "${target[@]}" --doc
phase unit
run cargo test "${target[@]}" --test cli --test reliability --test store
phase backend

say "passed in $((SECONDS - started))s:"
printf '  %s\n' "${timings[@]}"
