#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60) with cargo-fuzz on the
# nightly toolchain, and print the execution counts libFuzzer reports.
# Not part of .ci/test.sh: it needs nightly and cargo-fuzz
# (`rustup toolchain install nightly --profile minimal`, `cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs="${1:-60}"
for target in token_json metadata; do
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>"$log" || { tail -40 "$log"; exit 1; }
  runs="$(awk '/stat::number_of_executed_units/ {print $2}' "$log")"
  echo "$target: $runs executions in ${secs}s, no crash"
  rm -f "$log"
done
