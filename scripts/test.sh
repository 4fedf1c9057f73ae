#!/usr/bin/env bash
# Full test suite for rctoken. Meant for a fresh Debian/Ubuntu box as root
# (CI runs it via .ci/run). Installs what is missing, then fails fast.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repo root
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0

step() { printf '\n==== %s ====\n' "$*"; }

step "system packages"
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
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
cargo check --all-features --target aarch64-apple-darwin

step "cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps

step "cargo test (inside a private D-Bus session + gnome-keyring)"
scripts/with-keyring.sh cargo test --all-features

# ---- HOOK: benchmark smoke test --------------------------------------------
# Not wired up yet. Create an executable scripts/bench-smoke.sh (e.g. running
# `cargo bench --bench <name> -- --smoke`) and it will run here.
if [ -x scripts/bench-smoke.sh ]; then
  step "bench smoke"
  scripts/bench-smoke.sh
fi
# -----------------------------------------------------------------------------

step "all checks passed"
