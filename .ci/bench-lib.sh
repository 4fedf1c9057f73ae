# shellcheck shell=bash
# Shared by .ci/bench.sh and .ci/bench-smoke.sh: make sure the tools
# the benchmarks call exist (GNU time for peak RSS; the keyring tools come
# from .ci/lib/deps.sh via .ci/with-keyring.sh).
bench_deps() {
  if [ ! -x /usr/bin/time ]; then
    echo ">> installing package: time" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends time >&2
  fi
}
