# shellcheck shell=bash
# Shared helper: install RingCentral's own SDKs for the format tests
# (tests/cli/sdks.rs): ringcentral (PyPI) in a venv and @ringcentral/sdk
# (npm), pinned, into a cache directory that every user can read. Source
# it, then call `ensure_sdks DIR`; the tests find them through
# RCTOKEN_TEST_SDK_DIR=DIR.

RCTOKEN_SDK_PY="ringcentral==0.9.2"
RCTOKEN_SDK_JS="@ringcentral/sdk@5.0.11"

ensure_sdks() {
  local dir="$1" sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo ">> installing python3-venv and npm for the SDK format tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends python3-venv npm >&2
  fi
  mkdir -p "$dir"
  if [ ! -f "$dir/py/.done-$RCTOKEN_SDK_PY" ]; then
    echo ">> installing $RCTOKEN_SDK_PY into $dir/py" >&2
    rm -rf "$dir/py"
    /usr/bin/python3 -m venv "$dir/py"
    "$dir/py/bin/pip" install -q --disable-pip-version-check "$RCTOKEN_SDK_PY" >&2
    touch "$dir/py/.done-$RCTOKEN_SDK_PY"
  fi
  local js_done="$dir/node/.done-${RCTOKEN_SDK_JS//\//_}"
  if [ ! -f "$js_done" ]; then
    echo ">> installing $RCTOKEN_SDK_JS into $dir/node" >&2
    rm -rf "$dir/node"
    mkdir -p "$dir/node"
    npm install --silent --no-audit --no-fund --prefix "$dir/node" "$RCTOKEN_SDK_JS" >&2
    touch "$js_done"
  fi
  chmod -R a+rX "$dir"
}
