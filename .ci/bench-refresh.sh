#!/usr/bin/env bash
# What a refresh costs now against an earlier build, side by side in one run:
# builds this checkout and BASE (a commit, default 8798551: main before the
# refresh reservation of issue 10) in release mode, then times
# `rctoken token --refresh-with CMD` on an expired realistic token with both,
# interleaved, on keyutils and the real Secret Service. docs/benchmarks.md
# quotes a run of this script.
#
# Usage: .ci/bench-refresh.sh [BASE] [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base="${1:-8798551}"
rounds="${2:-30}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rctoken-bench-base.XXXXXX")"
cleanup() {
  git worktree remove --force "$tmp/src" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cargo build --release --quiet
git worktree add --quiet --detach "$tmp/src" "$base"
CARGO_TARGET_DIR="$tmp/target" cargo build --release --quiet --manifest-path "$tmp/src/Cargo.toml"

.ci/with-keyring.sh python3 .ci/bench-refresh.py \
  "$PWD/target/release/rctoken" "$tmp/target/release/rctoken" "$rounds"
