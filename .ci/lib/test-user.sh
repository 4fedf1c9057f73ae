# shellcheck shell=bash
# Shared helper: the unprivileged user the tests run as, so they meet what
# users meet (file ownership, kernel key quotas of a non-root uid) instead
# of root's privileges. Source it; needs root.

# The account. No password (locked), no sudo, no home of its own: every run
# gives it a fresh temporary HOME.
CI_USER="${RCTOKEN_CI_USER:-rctoken-ci}"

# Create the account unless it exists; refuse an account that could act as
# root, since tests run as it are meant to show what a plain user can do.
ci_user_ensure() {
  if ! getent passwd "$CI_USER" >/dev/null; then
    echo ">> creating the unprivileged test user $CI_USER" >&2
    # -M: no home directory (HOME is a per-run temp dir); -U: own group.
    useradd -M -U -s /bin/bash -c "rctoken CI tests" "$CI_USER"
  fi
  local uid groups
  uid="$(id -u "$CI_USER")"
  groups=" $(id -Gn "$CI_USER") "
  if [ "$uid" -eq 0 ]; then
    echo "ci: test user $CI_USER has uid 0; it must be an unprivileged user" >&2
    return 1
  fi
  case "$groups" in
    *" sudo "* | *" wheel "* | *" root "* | *" adm "*)
      echo "ci: test user $CI_USER is in a privileged group ($groups); remove it from it" >&2
      return 1 ;;
  esac
}

# Run CMD as the test user without a PAM session: for quick looks and the
# sweep (a runuser/PAM session would create and revoke a session keyring
# every time, which counts against the user's small key quota).
as_ci_user_quick() {
  setpriv --reuid="$CI_USER" --regid="$CI_USER" --init-groups -- "$@"
}

# Fail with a clear message unless the test user can read (and, for
# directories and executables, enter/run) every PATH given. Names the first path
# component that stops it, so a clone under /root (mode 0700) says so
# instead of failing later as some puzzling test error.
ci_user_can_read() {
  local p part walk
  for p in "$@"; do
    # Directories must be enterable, executables (x for root) runnable.
    if as_ci_user_quick test -r "$p" && { [ ! -x "$p" ] || as_ci_user_quick test -x "$p"; }; then
      continue
    fi
    walk=""
    IFS=/ read -ra part <<<"${p#/}"
    for seg in "${part[@]}"; do
      walk="$walk/$seg"
      if [ -d "$walk" ] && ! as_ci_user_quick test -x "$walk"; then
        echo "ci: user $CI_USER cannot enter $walk ($(stat -c '%A %U:%G' "$walk")), so it cannot reach $p." >&2
        echo "ci: the tests run as $CI_USER and need to read the repo and its target dir:" >&2
        echo "ci: clone the repo where every user can traverse (e.g. under /tmp or /work), or chmod o+x $walk." >&2
        return 1
      fi
    done
    echo "ci: user $CI_USER cannot read $p ($(stat -c '%A %U:%G' "$p")); make it world-readable (umask 022 when building)." >&2
    return 1
  done
}
