# shellcheck shell=bash
# Shared helper: find what a test run left behind, sweep it, and say so.
#
# Kernel keys outlive every process (a user's keyring lasts until reboot)
# and count against the owner's key quota (20000 bytes / 200 keys for a
# non-root uid), so a test that leaks keys makes later runs fail for
# reasons nobody can see. Stray /tmp entries are the same on disk. Every
# check compares a snapshot taken before the run with the state after it,
# so keys and files that were there before (a real user's tokens) are never
# touched. Source it (after lib/test-user.sh); needs root.

# Run CMD as WHO ("root" or the test user), without a PAM session.
_as() {
  local who=$1
  shift
  if [ "$who" = root ]; then
    "$@"
  else
    as_ci_user_quick "$@"
  fi
}

# Print "SERIAL FLAGS TIMEOUT DESCRIPTION" (serial in hex as /proc/keys
# shows it) for every `user` key owned by WHO whose description starts with
# rctoken: (items) or rctoken-key: (sealed stores' keys), and, given GID, whose group is GID. Read as WHO: /proc/keys
# lists only the keys the reader may view, and root may not view another
# user's keys. Only descriptions: never payloads.
keys_list() {
  local who=$1 gid=${2:-} uid
  uid="$(id -u "$who")"
  _as "$who" cat /proc/keys | awk -v uid="$uid" -v gid="$gid" '
    $8 == "user" && $6 == uid && (gid == "" || $7 == gid) {
      d = $9
      for (i = 10; i <= NF; i++) d = d " " $i
      sub(/: [0-9]+$/, "", d)   # the payload length user keys append
      if (index(d, "rctoken:") == 1 || index(d, "rctoken-key:") == 1) print $1, $2, $4, d
    }'
}

# A key the kernel still serves: not revoked (R), dead (D), invalidated (i)
# or expired. Others are gone for every caller and reaped by the kernel's
# garbage collector (revoked ones after key_gc_delay).
_live() { awk 'substr($2,2,1) != "R" && substr($2,3,1) != "D" && substr($2,7,1) != "i" && $3 != "expd"'; }

# Keys in NOW that are not in BEFORE (both keys_list outputs, as files).
# FILENAME, not NR == FNR: an empty BEFORE must not swallow NOW.
_new_keys() { awk 'FILENAME == ARGV[1] { seen[$1] = 1; next } !($1 in seen)' "$1" "$2"; }

# The description of a keys_list line (it may, in theory, contain spaces).
_desc() { awk '{ $1 = $2 = $3 = ""; sub(/^ +/, ""); print }'; }

# A temp file for the sweep's own bookkeeping.
_scratch() { mktemp "${CI_TMP:-${TMPDIR:-/tmp}}/sweep.XXXXXX"; }

# Save WHO's rctoken keys (of group GID, if given) to FILE before the run.
keys_snapshot() { keys_list "$1" "${3:-}" >"$2"; }

# After the run: find WHO's live rctoken keys (of group GID, if given) that
# are not in the snapshot BEFORE, print how many and their descriptions,
# invalidate them, and return 1 if there were any. LABEL names the phase.
keys_sweep() {
  local who=$1 before=$2 label=$3 gid=${4:-} now left n id
  now="$(_scratch)"
  left="$(_scratch)"
  keys_list "$who" "$gid" >"$now"
  _new_keys "$before" "$now" | _live >"$left"
  # Keys the tests revoked on purpose hold no payload any more but stay
  # linked (and counted) for key_gc_delay: unlink them, quietly.
  _new_keys "$before" "$now" | awk 'substr($2,2,1) == "R" {print $1}' | while read -r id; do
    _as "$who" keyctl unlink "$((16#$id))" @u >/dev/null 2>&1 || true
  done
  n="$(wc -l <"$left")"
  if [ "$n" -eq 0 ]; then
    echo "ci: $label: no rctoken keys left in $who's keyrings"
    rm -f "$now" "$left"
    return 0
  fi
  echo "ci: $label: the tests left $n rctoken key(s) in $who's keyrings:" >&2
  _desc <"$left" | sed 's/^/ci:   /' >&2
  while read -r id _; do
    _as "$who" keyctl invalidate "$((16#$id))" >/dev/null 2>&1 ||
      echo "ci:   could not invalidate key $((16#$id))" >&2
  done <"$left"
  echo "ci: $label: swept them (invalidated); failing the run" >&2
  rm -f "$now" "$left"
  return 1
}

# Print the kernel's key accounting for USER from /proc/key-users
# ("keys N/MAX, bytes N/MAX"), or that it has none yet.
key_usage() {
  local uid
  uid="$(id -u "$1")"
  awk -v uid="$uid:" '$1 == uid { split($4, k, "/"); split($5, b, "/");
      printf "%s keys %s/%s, bytes %s/%s\n", "'"$1"'", k[1], k[2], b[1], b[2]; f = 1 }
    END { if (!f) print "'"$1"'" " has no keys yet" }' /proc/key-users
}

# Names of the entries directly in DIR owned by USER (any owner if USER is
# empty), one per line, sorted.
tmp_list() {
  local owner=()
  [ -z "$2" ] || owner=(-user "$2")
  # /tmp is shared: an entry can vanish between find's readdir and its
  # stat. That is not an error here, so find's complaints are dropped.
  { find "$1" -mindepth 1 -maxdepth 1 "${owner[@]}" -printf '%f\n' 2>/dev/null || true; } |
    LC_ALL=C sort
}

# After the run: the entries of DIR owned by USER (any owner if empty) that
# are not in the snapshot BEFORE and do not match IGNORE (an extended
# regexp for CI's own temp dirs) are strays. Print them, remove them,
# return 1 if any.
tmp_sweep() {
  local dir=$1 user=$2 before=$3 ignore=$4 label=$5 strays name
  strays="$(tmp_list "$dir" "$user" | LC_ALL=C comm -13 "$before" - | grep -Ev "$ignore" || true)"
  if [ -z "$strays" ]; then
    echo "ci: $label: no stray entries in $dir"
    return 0
  fi
  echo "ci: $label: the tests left $(wc -l <<<"$strays") entr(y/ies)${user:+ owned by $user} in $dir:" >&2
  while IFS= read -r name; do
    echo "ci:   $dir/$name ($(stat -c %F "$dir/$name"))" >&2
    # What is in it names the test that made it (names only, a few).
    { find "$dir/$name" -mindepth 1 -maxdepth 2 -printf 'ci:     %P\n' 2>/dev/null || true; } |
      head -n 8 >&2
    rm -rf -- "${dir:?}/$name"
  done <<<"$strays"
  echo "ci: $label: removed them; failing the run" >&2
  return 1
}
