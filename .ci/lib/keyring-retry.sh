# shellcheck shell=bash
# Shared helper: rerun a keyring-backed step when gnome-keyring aborted.

# Run CMD (which uses .ci/with-keyring.sh); if it failed because
# gnome-keyring-daemon aborted under it (exit 75: a known upstream bug, see
# .ci/with-keyring.sh), run it again in a fresh keyring, at most twice. Any
# other failure fails at once.
keyring_retry() {
  local rc attempt
  for attempt in 1 2 3; do
    rc=0
    "$@" || rc=$?
    [ "$rc" -eq 75 ] || return "$rc"
    echo "ci: gnome-keyring-daemon aborted during attempt $attempt; running again in a fresh keyring" >&2
  done
  return "$rc"
}
