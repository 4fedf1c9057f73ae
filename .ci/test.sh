#!/usr/bin/env bash
# Full test suite for rctoken. Meant for a fresh Debian/Ubuntu box as root
# (CI runs it via .ci/run). Installs what is missing, then fails fast. The
# tests themselves run as an unprivileged user (see .ci/tests-as-user.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0

step() { printf '\n==== %s ====\n' "$*"; }

# shellcheck source=.ci/lib/keyring-retry.sh
. .ci/lib/keyring-retry.sh

step "system packages"
# shellcheck source=.ci/lib/deps.sh
. .ci/lib/deps.sh
ensure_deps

step "rustup components and targets"
installed="$(rustup component list --installed)"
for c in rustfmt clippy; do
  grep -q "^$c" <<<"$installed" || rustup component add "$c"
done
rustup target add aarch64-apple-darwin x86_64-pc-windows-gnu

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

step "cargo check (x86_64-pc-windows-gnu)"
cargo check --all-features --target x86_64-pc-windows-gnu

step "cargo check (aarch64-apple-darwin)"
# ring (rustls's crypto) compiles C for the target: clang can, without the
# macOS SDK, given ring's no-libc mode and a stand-in for the one SDK header
# it includes (.ci/macos-check/TargetConditionals.h). Type-checking only.
CC_aarch64_apple_darwin=clang \
CFLAGS_aarch64_apple_darwin="-nostdlibinc -DRING_CORE_NOSTDLIBINC -I$PWD/.ci/macos-check" \
  cargo check --all-features --target aarch64-apple-darwin

step "cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps

# Plain `cargo test` (default features, no failpoints) must build too: it
# is what a contributor types first.
step "cargo test --no-run (default features)"
cargo test --no-run

# The fast tier: the unit tests and tests/fast, which need no keychain (no
# session bus here, on purpose) and leave nothing in their TMPDIR. Fails fast
# before the long run; the full tier below runs them again with the rest.
step "fast tier, no keychain (cargo test --all-features --lib --bins --test fast)"
fast=(cargo test --all-features --lib --bins --test fast)
"${fast[@]}" --no-run
fast_tmp="$(mktemp -d /tmp/rctoken-ci.fast.XXXXXX)"
rc=0
env -u DBUS_SESSION_BUS_ADDRESS TMPDIR="$fast_tmp" "${fast[@]}" || rc=$?
left="$(ls -A "$fast_tmp")"
rm -rf "$fast_tmp"
if [ -n "$left" ]; then
  echo "ci: the fast tier left files in its TMPDIR: ${left//$'\n'/ }" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
[ "$rc" -eq 0 ] || exit "$rc"

# The Windows tier: the Windows build of the tests under Wine, on the
# Credential Manager (what it runs, and why not the rest, is in the script).
step "Windows tier under Wine (.ci/wine-tests.sh)"
bash .ci/wine-tests.sh

# The full tier, on the real keychains: builds as root, runs the as_root
# tests as root and everything else as an unprivileged user with the
# default key quotas, then sweeps what was left.
step "full tier: cargo test, as an unprivileged user (.ci/tests-as-user.sh)"
bash .ci/tests-as-user.sh

step "bench smoke (runs every benchmark with tiny counts; no time verdicts)"
keyring_retry .ci/bench-smoke.sh

step "all checks passed"
