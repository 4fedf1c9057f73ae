# shellcheck shell=bash
# Shared helper: install the Debian/Ubuntu packages the test scripts need,
# calling apt-get only when one of the required binaries is missing.
# Source it, then call `ensure_deps`.

# binary -> package that provides it
declare -A RCTOKEN_DEPS=(
  [gnome-keyring-daemon]=gnome-keyring
  [dbus-run-session]=dbus        # dbus-bin on newer releases; `dbus` pulls it in
  [dbus-daemon]=dbus
  [dbus-send]=dbus
  [dbus-launch]=dbus-x11         # satisfies gnome-keyring's dbus-session-bus dep
                                 # without dragging in systemd (dbus-user-session)
  [keyctl]=keyutils
  [secret-tool]=libsecret-tools
  [python3]=python3              # .ci/hanging-secret-service.py (stdlib only)
  # tests/cli/cli_help.rs runs the completion scripts in these shells and
  # checks the man page with man and groff.
  [zsh]=zsh
  [fish]=fish
  [man]=man-db
  [groff]=groff-base
  # The cross-checks in .ci/test.sh compile ring's C code (rustls's crypto,
  # under the RingCentral client) for Windows and macOS.
  [x86_64-w64-mingw32-gcc]=gcc-mingw-w64-x86-64
  [clang]=clang
  # The PostgreSQL store's tests: a private cluster (initdb, pg_ctl under
  # /usr/lib/postgresql/*/bin, which `postgresql` brings with
  # pg_ctlcluster), psql and pg_dump to look from outside.
  [pg_ctlcluster]=postgresql
  [psql]=postgresql-client
  [pg_dump]=postgresql-client
  [unshare]=util-linux
)

ensure_deps() {
  local bin missing=()
  for bin in "${!RCTOKEN_DEPS[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("${RCTOKEN_DEPS[$bin]}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  # Always install dbus-x11 alongside, so apt never picks dbus-user-session.
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" dbus-x11 | sort -u)
  echo ">> installing missing packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
