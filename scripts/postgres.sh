#!/usr/bin/env bash
# The project-local PostgreSQL cluster: data under .data/postgres (git-ignored), TCP on
# 127.0.0.1:$DEV_PG_PORT only (no Unix socket, no system service).
#
#   scripts/postgres.sh start   create the cluster if needed, start it, ensure role and database
#   scripts/postgres.sh stop
#   scripts/postgres.sh status
#
# Development settings: trust authentication on loopback, and fsync off (tests create and
# drop hundreds of databases). Never use this cluster for data you want to keep.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${DEV_PG_PORT:-55432}
DATA=$PWD/.data/postgres
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$PGBIN" ] || { echo "PostgreSQL server binaries not found: run scripts/setup.sh" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root, run the server as the `postgres` user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
psql_admin() { "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

start() {
  if [ ! -s "$DATA/PG_VERSION" ]; then
    echo "creating the project-local PostgreSQL cluster in $DATA"
    mkdir -p "$DATA"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DATA"; fi
    chmod 700 "$DATA"
    as_owner "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
# --- Slipway development cluster ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  if ! as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$DATA/server.log" >&2; exit 1; }
  fi
  # The application role may create databases (sqlx tests) and roles (tenant databases).
  psql_admin -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'slipway') THEN
        CREATE ROLE slipway LOGIN CREATEDB CREATEROLE;
      END IF;
    END \$\$;"
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'slipway'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE slipway OWNER slipway"
  fi
  echo "PostgreSQL is up: postgres://slipway@127.0.0.1:$PORT/slipway"
}

case "${1:-}" in
  start) start ;;
  stop) as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast stop ;;
  status) as_owner "$PGBIN/pg_ctl" -D "$DATA" status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
