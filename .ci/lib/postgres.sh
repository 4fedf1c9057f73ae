# shellcheck shell=bash
# A private PostgreSQL cluster for the tests of the PostgreSQL store: made
# with initdb in a directory of the test user's, run as that user (never
# as root, never the system's cluster), listening on a Unix socket in that
# directory and on 127.0.0.1 at a free port, stopped and deleted by
# pg_private_stop. Source it; needs Debian's `postgresql` package
# (ensure_deps installs it).
#
# pg_private_start USER DIR  exports:
#   RCTOKEN_TEST_DATABASE_URL  key=value words for the socket (trust: only
#                              USER can reach the 0700 directory)
#   RCTOKEN_TEST_PG_TCP        host:port of the loopback listener, which
#                              demands a password (scram-sha-256), to test
#                              the password file
#   RCTOKEN_TEST_PG_PASSWORD   that password (a test-only throwaway)
#   RCTOKEN_TEST_PGDATA        the data directory (tests restart the server)
#   RCTOKEN_TEST_PGBIN         the server's bin directory (pg_ctl)

pg_bin_dir() {
  local initdb
  initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)"
  [ -n "$initdb" ] || { echo "ci: no initdb under /usr/lib/postgresql (apt-get install postgresql)" >&2; return 1; }
  dirname "$initdb"
}

pg_private_start() {
  local user=$1 dir=$2 bin port
  bin="$(pg_bin_dir)"
  install -d -o "$user" -g "$user" -m 0700 "$dir"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  local password
  password="ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf '%s\n' "$password" >"$dir/.pw.tmp"
  chown "$user" "$dir/.pw.tmp"
  runuser -u "$user" -- "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/.pw.tmp" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  rm -f "$dir/.pw.tmp"
  runuser -u "$user" -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-k $dir -c listen_addresses=127.0.0.1 -p $port -c max_connections=300 -c fsync=on" \
    start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  runuser -u "$user" -- psql -h "$dir" -p "$port" -d postgres -qAtc "CREATE DATABASE rctoken"
  export RCTOKEN_TEST_DATABASE_URL="host=$dir port=$port dbname=rctoken user=$user sslmode=disable"
  export RCTOKEN_TEST_PG_TCP="127.0.0.1:$port"
  export RCTOKEN_TEST_PG_PASSWORD="$password"
  export RCTOKEN_TEST_PGDATA="$dir/data"
  export RCTOKEN_TEST_PGBIN="$bin"
  PG_PRIVATE_USER=$user PG_PRIVATE_DIR=$dir
  echo "ci: private PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for $user at $dir (port $port)"
}

pg_private_stop() {
  [ -n "${PG_PRIVATE_DIR:-}" ] || return 0
  local bin
  bin="$(pg_bin_dir)"
  if [ -f "$PG_PRIVATE_DIR/data/postmaster.pid" ]; then
    runuser -u "$PG_PRIVATE_USER" -- "$bin/pg_ctl" -D "$PG_PRIVATE_DIR/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_PRIVATE_DIR"
  PG_PRIVATE_DIR=
}
