#!/usr/bin/env bash
# CI smoke test of the benchmark suite: every part runs with tiny iteration
# counts. It asserts nothing about time, only that each part still works
# (including that 16 processes refreshing one token call the refresh once).
#
# Built with the dev profile: it reuses what `cargo test` just compiled, where
# a cold release build would take minutes; smoke figures are meaningless.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/bench-lib.sh
. .ci/bench-lib.sh
bench_deps
cargo bench --profile dev --all-features --bench perf --no-run
exec .ci/with-keyring.sh cargo bench --profile dev --all-features --bench perf -- --smoke
