#!/usr/bin/env bash
# Usage: .ci/bench-postgres.sh [ROUNDS]   (as root)
# Builds the release binary, starts a private PostgreSQL cluster as the
# unprivileged test user (as CI's tests do), runs .ci/bench-postgres.py as
# that user against it, and removes the cluster. Prints the Markdown tables
# docs/benchmarks.md reports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. .ci/lib/deps.sh
. .ci/lib/test-user.sh
. .ci/lib/postgres.sh
ensure_deps
ci_user_ensure
cargo build --release --all-features
chmod o+rx target target/release target/release/rctoken
dir="$(mktemp -d /var/tmp/rctoken-bench-pg.XXXXXX)"
trap 'pg_private_stop; rm -rf "$dir"' EXIT
pg_private_start "$CI_USER" "$dir/pg"
chmod 711 "$dir"
runuser -u "$CI_USER" -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 \
  RCTOKEN_TEST_DATABASE_URL="$RCTOKEN_TEST_DATABASE_URL" RCTOKEN_TEST_PGBIN="$RCTOKEN_TEST_PGBIN" \
  python3 "$PWD/.ci/bench-postgres.py" "$PWD/target/release/rctoken" "${1:-100}"
