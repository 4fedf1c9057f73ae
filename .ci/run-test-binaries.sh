#!/usr/bin/env bash
# Usage: .ci/run-test-binaries.sh LIST LOGDIR [--expect-some] [-- LIBTEST-ARGS...]
#
# Runs every test binary in LIST (lines "KIND NAME PATH", written by
# .ci/tests-as-user.sh from `cargo test --no-run --message-format=json`)
# the way `cargo test` runs them: from the package root, with
# CARGO_MANIFEST_DIR set, passing LIBTEST-ARGS (a filter, --skip ...).
# It runs as whoever calls it (root, or the unprivileged test user), so it
# never builds: the build happened before, as root.
#
# Unlike `cargo test` it goes on after a failing binary, so one run shows
# every failure, then prints a summary. Each binary's output is also kept in
# LOGDIR/NAME.log. Exits 0 if every binary passed, 1 otherwise. With
# --expect-some it also fails when no test ran at all: a filter that
# matches nothing would otherwise pass without testing anything.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 LIST LOGDIR [--expect-some] [-- LIBTEST-ARGS...]" >&2
  exit 2
fi
list=$1 logdir=$2
shift 2
expect_some=0
if [ "${1:-}" = --expect-some ]; then
  expect_some=1
  shift
fi
[ "${1:-}" != -- ] || shift

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # the package root, as cargo does
# Tests read CARGO_* at compile time (env!), which bakes in the build's
# paths; cargo also sets this one at run time, and a test may come to use it.
export CARGO_MANIFEST_DIR="$PWD"

# A hanging test would otherwise hold CI until its global timeout. Far above
# the slowest binary (about a minute); a hang is a failure with a message.
limit="${RCTOKEN_CI_BINARY_TIMEOUT:-1200}"

# What this user owns directly in the temp dir, to name the binary that
# leaves something there (the caller's check is what fails the run).
tmp="${TMPDIR:-/tmp}"
# (Entries of others can vanish while find looks: not an error here.)
own_tmp() {
  { find "$tmp" -mindepth 1 -maxdepth 1 -user "$(id -u)" -printf '%f\n' 2>/dev/null || true; } |
    LC_ALL=C sort
}

# This user's kernel key accounting ("keys 3/200, bytes 6457/20000"): how
# close the binary came to the quota, the usual cause of keyutils failures
# of a non-root user. Bytes include 4 per key ever linked into a keyring
# and not unlinked since (the kernel keeps them for keys deleted by
# invalidation), so they can grow with keys that no longer exist.
quota() {
  awk -v uid="$(id -u):" '$1 == uid { printf "keys %s, bytes %s", $4, $5; f = 1 }
    END { if (!f) printf "no keys" }' /proc/key-users
}

passed=0 failed=0 ignored=0 skipped=0 bad=() strays=()
# The list comes in on fd 3 and the binaries get /dev/null on stdin: a test
# (or a CLI it runs) reading stdin must not eat the rest of the list.
while read -r kind name exe <&3; do
  [ -n "$exe" ] || continue
  log="$logdir/$kind-$name.log"
  # Binaries without a matching test (most, for the as_root filter) would
  # only add empty "running 0 tests" blocks: one line for all of them.
  if "$exe" --list "$@" </dev/null 2>/dev/null | grep -q '^0 tests, '; then
    skipped=$((skipped + 1))
    continue
  fi
  printf '\n---- %s %s (as %s): %s %s\n' "$kind" "$name" "$(id -un)" "${exe#"$PWD"/}" "$*"
  before="$(own_tmp)"
  rc=0
  timeout -k 30 "$limit" "$exe" "$@" </dev/null 2>&1 | tee "$log" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "ci: $kind $name did not finish within ${limit}s: killed (a hang)" | tee -a "$log" >&2
  fi
  echo "ci: $kind $name done (exit $rc); $(id -un)'s key quota use now: $(quota)"
  new="$(LC_ALL=C comm -13 <(echo "$before") <(own_tmp) |
         grep -Ev '^(rctoken-ci\.|rctoken-keyring\.)' | paste -sd ' ' || true)"
  if [ -n "$new" ]; then
    echo "ci: $kind $name left in $tmp: $new" >&2
    strays+=("$kind $name: $new")
  fi
  # libtest's "test result: ok. 12 passed; 0 failed; 3 ignored; ..." lines.
  read -r p f i < <(awk '/^test result:/ { for (k = 1; k < NF; k++) {
        if ($(k+1) ~ /^passed/) p += $k; if ($(k+1) ~ /^failed/) f += $k;
        if ($(k+1) ~ /^ignored/) i += $k } }
      END { print p + 0, f + 0, i + 0 }' "$log")
  passed=$((passed + p)) failed=$((failed + f)) ignored=$((ignored + i))
  [ "$rc" -eq 0 ] || bad+=("$kind $name (exit $rc)")
done 3<"$list"

printf '\n==== summary (as %s, args: %s) ====\n' "$(id -un)" "${*:-none}"
echo "tests: $passed passed, $failed failed, $ignored ignored" \
  "($skipped binaries without a matching test not run)"
if [ ${#strays[@]} -gt 0 ]; then
  echo "left in $tmp (the caller's check sweeps them and fails the run):"
  printf '  %s\n' "${strays[@]}"
fi
status=0
if [ ${#bad[@]} -gt 0 ]; then
  status=1
  echo "failing binaries:"
  printf '  %s\n' "${bad[@]}"
  echo "failing tests:"
  # "test NAME ... FAILED" lines, and the harness' own failure lines.
  for log in "$logdir"/*.log; do
    sed -n "s|^test \(.*\) \.\.\. FAILED\$|  $(basename "$log" .log | sed 's/^[a-z]*-//')::\1|p" "$log"
  done | sort -u
fi
if [ "$expect_some" -eq 1 ] && [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "ci: no test ran with args '$*': the filter matched nothing" >&2
  status=1
fi
exit "$status"
