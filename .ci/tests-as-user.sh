#!/usr/bin/env bash
# Usage: .ci/tests-as-user.sh        (as root; .ci/test.sh runs it)
#
# The test step of CI, run the way users run rctoken: as an unprivileged
# user with the kernel's default non-root key quotas, not as root with
# root's (root_maxbytes is over 1000 times maxbytes). It
#   1. builds every test binary as root (the user needs no toolchain);
#   2. runs the tests that need root (named *as_root*) as root, and the doc
#      tests, then checks that root's keyrings hold no key this phase made
#      (told from other root processes' by their group, see root_marked)
#      and that its private TMPDIR is empty;
#   3. runs every other test (--skip as_root) as the test user
#      (lib/test-user.sh), in a fresh temporary HOME and its own D-Bus
#      session with an unlocked gnome-keyring (.ci/with-keyring.sh, run as
#      that user), then checks that the user's keyrings and /tmp hold
#      nothing new.
# A check that finds rctoken keys or /tmp entries the run created prints
# them (descriptions and names only), sweeps them and fails the run. The
# checks run from an EXIT trap too, so a failing or interrupted run is
# swept as well.
#
# Environment: RCTOKEN_CI_USER (default rctoken-ci),
# RCTOKEN_CI_BINARY_TIMEOUT (seconds per test binary, default 1200),
# RCTOKEN_CI_SELFTEST_LEAVE_BEHIND=1 (plant a key and a temp dir in each
# phase to prove the checks catch them: the run must then fail).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
repo="$PWD"
# What the build writes must be readable by the test user, whatever
# umask root has (a CI image may set 077).
umask 022

if [ "$(id -u)" -ne 0 ]; then
  echo "ci: $0 must run as root: it creates the test user and runs the as_root tests" >&2
  exit 2
fi

# One run per box at a time: two runs would share the test user's keyring,
# and each would sweep the other's keys. -o: the lock is not inherited by
# the tests, so a process a test leaks cannot hold it forever.
lock=/run/lock/rctoken-ci.lock
if [ "${RCTOKEN_CI_LOCKED:-}" != "$lock" ]; then
  mkdir -p /run/lock
  export RCTOKEN_CI_LOCKED="$lock"
  if ! flock -n -o "$lock" true; then
    echo "ci: another CI run holds $lock; waiting for it to finish" >&2
  fi
  exec flock -o "$lock" bash "$repo/.ci/tests-as-user.sh" "$@"
fi

# shellcheck source=.ci/lib/deps.sh
. .ci/lib/deps.sh
# shellcheck source=.ci/lib/keyring-retry.sh
. .ci/lib/keyring-retry.sh
# shellcheck source=.ci/lib/test-user.sh
. .ci/lib/test-user.sh
# shellcheck source=.ci/lib/leftovers.sh
. .ci/lib/leftovers.sh
# shellcheck source=.ci/lib/postgres.sh
. .ci/lib/postgres.sh
ensure_deps
# shellcheck source=.ci/lib/sdks.sh
. .ci/lib/sdks.sh
sdk_dir=/var/cache/rctoken-ci/sdks
ensure_sdks "$sdk_dir"

step() { printf '\n==== %s ====\n' "$*"; }
started=$SECONDS

step "kernel key quotas (not changed here: the tests must live with them)"
for f in maxkeys maxbytes root_maxkeys root_maxbytes gc_delay; do
  printf '  %-14s %s\n' "$f" "$(cat "/proc/sys/kernel/keys/$f")"
done
if [ "$(cat /proc/sys/kernel/keys/maxbytes)" != 20000 ] ||
   [ "$(cat /proc/sys/kernel/keys/maxkeys)" != 200 ]; then
  echo "ci: WARNING: the non-root key quotas differ from the kernel defaults" \
       "(maxbytes 20000, maxkeys 200): the run does not show what users get" >&2
fi

step "test user"
ci_user_ensure
echo "ci: tests run as $(id "$CI_USER")"
# Its processes would share (and race) the keyring this run checks.
if procs="$(ps -u "$CI_USER" -o pid=,stat=,args= | awk '$2 !~ /^Z/')" && [ -n "$procs" ]; then
  echo "ci: processes of $CI_USER are running (a killed earlier run?); stop them first:" >&2
  echo "$procs" >&2
  exit 1
fi

# CI's own temp dir: the test user's HOME, logs, the binary list, and the
# TMPDIR of the root phase. 0711: the user may enter it, not list it.
CI_TMP="$(mktemp -d /tmp/rctoken-ci.XXXXXX)"
export CI_TMP
chmod 711 "$CI_TMP"
home="$CI_TMP/home" root_tmp="$CI_TMP/root-tmp"
mkdir -m 700 "$home" "$CI_TMP/logs-user" "$root_tmp" "$CI_TMP/logs-root"
chown "$CI_USER:$CI_USER" "$home" "$CI_TMP/logs-user"
# CI's own /tmp entries, which the /tmp check ignores: this dir, and the
# private keyring dirs of .ci/with-keyring.sh (which removes them itself).
ci_own='^(rctoken-ci\.|rctoken-keyring\.)'

failures=()
root_phase=no user_phase=no

# Check what the root phase left: root's keys, and its private TMPDIR
# (root shares /tmp with every other root process on the box; a TMPDIR of
# its own makes "what this phase left" exact).
check_root() {
  root_phase=checked
  keys_sweep root "$CI_TMP/keys-root.before" "root phase" "$(id -g "$CI_USER")" ||
    failures+=("keys left by the root phase")
  tmp_sweep "$root_tmp" "" /dev/null '^$' "root phase" || failures+=("files left by the root phase")
}

# Check what the user phase left: the user's keys, its /tmp entries, and
# any process of it still running.
check_user() {
  user_phase=checked
  keys_sweep "$CI_USER" "$CI_TMP/keys-user.before" "user phase" || failures+=("keys left by the user phase")
  tmp_sweep /tmp "$CI_USER" "$CI_TMP/tmp-user.before" "$ci_own" "user phase" ||
    failures+=("files left by the user phase")
  # Zombies are dead already (PID 1 in a container may never reap them).
  local procs pid rest
  procs="$(ps -u "$CI_USER" -o pid=,stat=,args= | awk '$2 !~ /^Z/' || true)"
  if [ -n "$procs" ]; then
    echo "ci: user phase: processes of $CI_USER still running; killing them:" >&2
    while read -r pid rest; do
      echo "ci:   $pid $rest" >&2
      kill -KILL "$pid" 2>/dev/null || true
    done <<<"$procs"
    failures+=("processes left by the user phase")
  fi
  echo "ci: $(key_usage "$CI_USER") after the run"
  fresh_user_keyring
}

# Empty the test user's user keyring (@u). Needed beyond sweeping keys: the
# kernel charges a keyring 4 bytes of its owner's quota for every link it
# adds, and gives them back on unlink but not when an invalidated key is
# garbage-collected away. So every key deleted by invalidation keeps 4 of
# the user's 20000 bytes until reboot, and after a few runs on one box the
# tests would start at a nearly full quota. Clearing a keyring resets its
# charge: each run starts as on a fresh boot and leaves nothing charged.
# The account is CI's own, so nothing in its keyring belongs to anyone else.
fresh_user_keyring() {
  as_ci_user_quick keyctl clear @u >/dev/null
  echo "ci: $(key_usage "$CI_USER") with its user keyring cleared"
}

# The script's own stdout and stderr: a command failing under set -e runs
# the EXIT trap with that command's redirections still in place, and the
# report of the checks must not end up in, say, a snapshot file.
exec 8>&1 9>&2
finish() {
  local rc=$?
  exec 1>&8 2>&9
  set +e
  # The test user's server goes first: check_user counts its processes.
  pg_private_stop
  # Interrupted or failed mid-phase: the checks still run.
  [ "$root_phase" != started ] || check_root
  [ "$user_phase" != started ] || check_user
  rm -rf "$CI_TMP"
  if [ ${#failures[@]} -gt 0 ]; then
    printf '\nci: FAILED:\n' >&2
    printf 'ci:   %s\n' "${failures[@]}" >&2
    [ "$rc" -ne 0 ] || rc=1
  fi
  echo "ci: tests took $((SECONDS - started)) s"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The root phase runs as uid 0 with the test user's group as its primary
# group. The kernel stamps each key with its creator's gid, and root's
# keyring is shared by every root process on the box (on a developer's box,
# other test runs): the gid tells this phase's keys from theirs, so the
# check neither blames nor sweeps keys that are not ours. Still root: euid
# 0 and every capability; only new files' group differs.
root_marked() { setpriv --regid="$CI_USER" --keep-groups -- "$@"; }

# Plant a key and a temp dir as WHO (self-test of the checks above).
selftest_leave_behind() {
  [ "${RCTOKEN_CI_SELFTEST_LEAVE_BEHIND:-}" = 1 ] || return 0
  local who=$1 dir=$2
  echo "ci: SELF-TEST: leaving a key and a temp dir behind as $who; the checks must catch them" >&2
  local as=(_as "$who")
  [ "$who" != root ] || as=(root_marked)
  "${as[@]}" keyctl add user "rctoken:ci-selftest-$who:left-behind" "not a secret" @u >/dev/null
  "${as[@]}" mktemp -d "$dir/ci-selftest.XXXXXX" >/dev/null
}

step "build the tests (as root: the test user needs no toolchain)"
cargo test --all-features --no-run --message-format=json-render-diagnostics |
  python3 .ci/lib/test-binaries.py "$CI_TMP/binaries" "$CI_TMP/executables"
chmod 644 "$CI_TMP/binaries"
# The binaries keep the build's paths (CARGO_MANIFEST_DIR, the CLI behind
# CARGO_BIN_EXE_rctoken): the user must reach them, and the repo's files
# the tests read (shims they compile, the fake Secret Service).
mapfile -t exes <"$CI_TMP/executables"
ci_user_can_read "$repo" "$repo/tests/shim" "$repo/.ci/with-keyring.sh" \
  "$repo/.ci/run-test-binaries.sh" "$repo/.ci/hanging-secret-service.py" "${exes[@]}"

step "tests that need root, as root (filter: as_root)"
keys_snapshot root "$CI_TMP/keys-root.before" "$(id -g "$CI_USER")"
root_phase=started
t=$SECONDS
rc=0
keyring_retry root_marked .ci/with-keyring.sh env TMPDIR="$root_tmp" \
  .ci/run-test-binaries.sh "$CI_TMP/binaries" "$CI_TMP/logs-root" --expect-some -- as_root || rc=$?
[ "$rc" -eq 0 ] || failures+=("as_root tests as root (exit $rc)")

step "doc tests, as root (they need the toolchain)"
rc=0
keyring_retry root_marked .ci/with-keyring.sh env TMPDIR="$root_tmp" cargo test --doc --all-features || rc=$?
[ "$rc" -eq 0 ] || failures+=("doc tests (exit $rc)")
selftest_leave_behind root "$root_tmp"
check_root
echo "ci: root phase took $((SECONDS - t)) s"

step "all other tests, as $CI_USER (--skip as_root)"
echo "ci: $(key_usage "$CI_USER") before the run"
earlier="$(keys_list "$CI_USER" | _live | _desc)"
if [ -n "$earlier" ]; then
  echo "ci: WARNING: $CI_USER holds $(wc -l <<<"$earlier") rctoken key(s) from before this run (a killed run?); clearing:" >&2
  while IFS= read -r d; do echo "ci:   $d" >&2; done <<<"$earlier"
fi
fresh_user_keyring
keys_snapshot "$CI_USER" "$CI_TMP/keys-user.before"
tmp_list /tmp "$CI_USER" >"$CI_TMP/tmp-user.before"
user_phase=started
t=$SECONDS
pg_private_start "$CI_USER" "$CI_TMP/pg"
rc=0
# runuser opens a PAM session as a login would: pam_keyinit gives it a
# session keyring of its own. env -i: nothing of root's environment
# (CARGO_HOME, a session bus, ...) leaks in; HOME is fresh and empty.
keyring_retry runuser -u "$CI_USER" -- env -i \
  HOME="$home" USER="$CI_USER" LOGNAME="$CI_USER" SHELL=/bin/bash \
  PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 RUST_BACKTRACE=0 \
  RCTOKEN_CI_BINARY_TIMEOUT="${RCTOKEN_CI_BINARY_TIMEOUT:-1200}" \
  RCTOKEN_TEST_SDK_DIR="$sdk_dir" \
  RCTOKEN_TEST_DATABASE_URL="$RCTOKEN_TEST_DATABASE_URL" \
  RCTOKEN_TEST_PG_TCP="$RCTOKEN_TEST_PG_TCP" \
  RCTOKEN_TEST_PG_PASSWORD="$RCTOKEN_TEST_PG_PASSWORD" \
  RCTOKEN_TEST_PGDATA="$RCTOKEN_TEST_PGDATA" \
  RCTOKEN_TEST_PGBIN="$RCTOKEN_TEST_PGBIN" \
  "$repo/.ci/with-keyring.sh" \
  "$repo/.ci/run-test-binaries.sh" "$CI_TMP/binaries" "$CI_TMP/logs-user" \
  --expect-some -- --skip as_root || rc=$?
[ "$rc" -eq 0 ] || failures+=("tests as $CI_USER (exit $rc)")
# The PostgreSQL benchmark with tiny counts on the debug binary, while the
# server is up: a smoke run (it checks one refresh for 64 processes; its
# figures mean nothing here; .ci/bench-postgres.sh makes the real ones).
rc=0
runuser -u "$CI_USER" -- env -i HOME="$home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
  RCTOKEN_TEST_DATABASE_URL="$RCTOKEN_TEST_DATABASE_URL" RCTOKEN_TEST_PGBIN="$RCTOKEN_TEST_PGBIN" \
  python3 "$repo/.ci/bench-postgres.py" "$repo/target/debug/rctoken" 3 >/dev/null || rc=$?
[ "$rc" -eq 0 ] || failures+=("PostgreSQL bench smoke (exit $rc)")
pg_private_stop
selftest_leave_behind "$CI_USER" /tmp
check_user
echo "ci: user phase took $((SECONDS - t)) s"

[ ${#failures[@]} -eq 0 ] || exit 1
step "tests passed (root phase and user phase; nothing left behind)"
