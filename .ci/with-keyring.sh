#!/usr/bin/env bash
# Usage: .ci/with-keyring.sh CMD [ARGS...]
#
# Runs CMD inside a private D-Bus session bus that has a fresh, unlocked
# gnome-keyring Secret Service (org.freedesktop.secrets) whose default
# collection is "login". Works as root without systemd/PAM/desktop.
# Every run uses its own temp dirs, so it is re-runnable and never touches an
# existing login keyring. Exits with CMD's status, or 75 if CMD failed and
# the keyring daemon had died meanwhile (an upstream gnome-keyring abort).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib/deps.sh
. "$here/lib/deps.sh"
ensure_deps

# Private dirs for the keyring daemon: keyrings live in $XDG_DATA_HOME/keyrings,
# its control socket in $XDG_RUNTIME_DIR/keyring.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/rctoken-keyring.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$tmp/data/keyrings" "$tmp/run" "$tmp/home"
chmod 700 "$tmp/run" "$tmp/data/keyrings"
# Make "login" the default collection explicitly (gnome-keyring also does this
# by itself when --unlock creates the login keyring in an empty dir).
echo -n login > "$tmp/data/keyrings/default"

# The stock session config listens on unix:tmpdir=/tmp, whose socket file
# dbus-daemon leaves in /tmp when it is stopped: one stray /tmp entry per
# run. The same config, listening in this run's private dir instead.
mkdir -m 700 "$tmp/bus"
sed -e "s|<listen>[^<]*</listen>|<listen>unix:dir=$tmp/bus</listen>|" \
    -e 's|<includedir>session.d</includedir>|<includedir>/usr/share/dbus-1/session.d</includedir>|' \
    /usr/share/dbus-1/session.conf >"$tmp/session.conf"
grep -q "unix:dir=$tmp/bus" "$tmp/session.conf" || {
  echo "with-keyring: cannot point the session bus at $tmp/bus" >&2; exit 125; }

export XDG_DATA_HOME="$tmp/data" XDG_RUNTIME_DIR="$tmp/run"
export KEYRING_TMP="$tmp"
# Don't let an inherited keyring/bus leak in.
unset GNOME_KEYRING_CONTROL SSH_AUTH_SOCK DBUS_SESSION_BUS_ADDRESS

# NB: `exec` is not used for dbus-run-session so the EXIT trap still cleans up.
set +e
# shellcheck disable=SC2016  # the script below is expanded by the inner bash
dbus-run-session --config-file="$tmp/session.conf" -- bash -euo pipefail -c '
  svc=org.freedesktop.secrets
  call() { timeout 5 dbus-send --session --print-reply "$@" 2>&1; }

  # Start + unlock the daemon; HOME override keeps it away from ~/.local etc.
  # It may print VAR=value lines (e.g. GNOME_KEYRING_CONTROL): export them.
  while IFS= read -r line; do
    case "$line" in *=*) export "${line?}" ;; esac
  done < <(echo -n pw | HOME="$KEYRING_TMP/home" \
             gnome-keyring-daemon --unlock --components=secrets)

  # Wait until the daemon owns the name. NameHasOwner never triggers D-Bus
  # activation (which would start a second, locked daemon).
  for _ in $(seq 100); do
    owned=$(call --dest=org.freedesktop.DBus / \
            org.freedesktop.DBus.NameHasOwner string:$svc || true)
    [[ $owned == *"boolean true"* ]] && break
    sleep 0.1
  done
  pid=$(call --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.GetConnectionUnixProcessID string:$svc \
        | awk "/uint32/ {print \$2}" || true)
  [ -n "$pid" ] || { echo "with-keyring: Secret Service did not start" >&2; exit 125; }

  # Default collection must be "login" and unlocked.
  alias=$(call --dest=$svc /org/freedesktop/secrets \
          org.freedesktop.Secret.Service.ReadAlias string:default)
  [[ $alias == *"/org/freedesktop/secrets/collection/login"* ]] || {
    echo "with-keyring: default collection is not login: $alias" >&2; exit 125; }
  locked=$(call --dest=$svc /org/freedesktop/secrets/collection/login \
           org.freedesktop.DBus.Properties.Get \
           string:org.freedesktop.Secret.Collection string:Locked)
  [[ $locked == *"boolean false"* ]] || {
    echo "with-keyring: login collection is locked: $locked" >&2; exit 125; }

  # End-to-end smoke: store, read back and delete a throwaway item.
  echo -n ok | timeout 10 secret-tool store --label=with-keyring-probe with-keyring probe
  [ "$(timeout 10 secret-tool lookup with-keyring probe)" = ok ] || {
    echo "with-keyring: store/lookup smoke test failed" >&2; exit 125; }
  timeout 10 secret-tool clear with-keyring probe

  unset KEYRING_TMP
  set +e
  "$@"
  rc=$?
  # Dead, or a zombie nobody reaps (PID 1 here may not).
  state=$(awk "{print \$3}" "/proc/$pid/stat" 2>/dev/null || echo gone)
  if [ "$state" = gone ] || [ "$state" = Z ] || [ "$state" = X ]; then
    # gnome-keyring-daemon 42-50 aborts on some concurrent OpenSession
    # requests (upstream gnome-keyring #190/#194/#196: a NULL client record
    # reaches g_variant_new). D-Bus then activates a fresh, locked daemon and
    # every later Secret Service call wants a prompt. Say so, with a code of
    # its own, so the caller can tell this from a failing test.
    echo "with-keyring: gnome-keyring-daemon (pid $pid) died during the run" >&2
    [ "$rc" -eq 0 ] || exit 75
  fi
  kill "$pid" 2>/dev/null
  exit $rc
' with-keyring "$@"
rc=$?
set -e
exit $rc
