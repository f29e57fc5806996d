# Sourced by scripts/test: starts a throwaway PostgreSQL cluster for the test
# suite in a temporary directory (Unix socket only, no TCP port) and exports
# TEST_DATABASE_URL. `hearth_pg_stop` stops it and removes the directory.
# Returns non-zero, starting nothing, when no PostgreSQL server binaries are
# installed (Debian/Ubuntu: apt-get install postgresql).

hearth_pg_start() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ] && command -v pg_ctl >/dev/null 2>&1; then
    bin=$(dirname "$(command -v pg_ctl)")
  fi
  [ -n "$bin" ] && [ -x "$bin/initdb" ] || return 1

  HEARTH_PG_DIR=$(mktemp -d /tmp/hearth-pg.XXXXXX)
  local as=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root.
    id postgres >/dev/null 2>&1 || return 1
    chown postgres: "$HEARTH_PG_DIR"
    as=(runuser -u postgres --)
  fi
  HEARTH_PG_CTL=("${as[@]}" "$bin/pg_ctl" -D "$HEARTH_PG_DIR/data")
  "${as[@]}" "$bin/initdb" -D "$HEARTH_PG_DIR/data" -A trust -U postgres --no-sync -E UTF8 \
    >"$HEARTH_PG_DIR/initdb.log" 2>&1 || { cat "$HEARTH_PG_DIR/initdb.log" >&2; return 1; }
  "${HEARTH_PG_CTL[@]}" -l "$HEARTH_PG_DIR/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories=$HEARTH_PG_DIR -c max_connections=300 -c fsync=${HEARTH_PG_FSYNC:-off}" \
    start >/dev/null || { cat "$HEARTH_PG_DIR/server.log" >&2; return 1; }
  export TEST_DATABASE_URL="postgres://postgres@localhost/postgres?host=$HEARTH_PG_DIR"
  echo "scripts/test: started a throwaway PostgreSQL in $HEARTH_PG_DIR"
}

hearth_pg_stop() {
  [ -n "${HEARTH_PG_DIR:-}" ] || return 0
  "${HEARTH_PG_CTL[@]}" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$HEARTH_PG_DIR"
}
