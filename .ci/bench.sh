#!/usr/bin/env bash
# Full benchmark run: release build, real Secret Service (a private
# gnome-keyring via .ci/with-keyring.sh) and real kernel keyutils.
# Prints Markdown tables; docs/benchmarks.md quotes a run of this script.
#
# Usage: .ci/bench.sh [overhead] [cli] [scale] [contention]
#        (no part named = all parts; about a minute after the build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/bench-lib.sh
. .ci/bench-lib.sh
bench_deps
# Build first, outside the keyring session, so build time is not inside it.
cargo bench --bench perf --no-run
exec .ci/with-keyring.sh cargo bench --bench perf -- "$@"
