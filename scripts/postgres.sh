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
#
# Sites' containers reach the cluster from Docker bridge networks: it listens on every
# address, and pg_hba.conf lets those networks in with a password only (scram-sha-256) and
# never as the control plane's roles (`slipway`, `postgres`). Firewall port $DEV_PG_PORT
# on a machine with a public address.
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
    echo "include_if_exists = 'slipway.conf'" >>"$DATA/postgresql.conf"
  fi
  # Rewritten at every start, so a cluster made by an older checkout gets today's settings.
  # max_connections: each site's role has its plan's CONNECTION LIMIT (3-10) and its app
  # closes idle connections, so a few hundred sites fit; tests run many at once.
  as_owner tee "$DATA/slipway.conf" >/dev/null <<CONF
# --- Slipway development cluster (written by scripts/postgres.sh) ---
listen_addresses = '*'
port = $PORT
unix_socket_directories = ''
max_connections = 500
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  as_owner tee "$DATA/pg_hba.conf" >/dev/null <<HBA
# TYPE  DATABASE  USER              ADDRESS          METHOD
host    all       all               127.0.0.1/32     trust
host    all       all               ::1/128          trust
# Sites' containers: never as the control plane's roles, otherwise with a password.
host    all       postgres,slipway  0.0.0.0/0        reject
host    all       all               172.16.0.0/12    scram-sha-256
host    all       all               10.0.0.0/8       scram-sha-256
host    all       all               192.168.0.0/16   scram-sha-256
HBA
  if as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA" reload >/dev/null
  else
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$DATA/server.log" >&2; exit 1; }
  fi
  # Settings that only a restart applies (a cluster started by an older checkout).
  if [ "$(psql_admin -c 'SHOW listen_addresses')" != "*" ] || [ "$(psql_admin -c 'SHOW max_connections')" != "500" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 restart >/dev/null
  fi
  # The application role may create databases (sqlx tests) and roles (tenant databases).
  psql_admin -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'slipway') THEN
        CREATE ROLE slipway LOGIN CREATEDB CREATEROLE;
      END IF;
    END \$\$;"
  # It may end other roles' sessions (pg_signal_backend): dropping a test database WITH
  # (FORCE) ends the sessions sites' roles left open there, e.g. from a container removed
  # with `docker rm -f`, whose connection the server has not yet seen close.
  psql_admin -c "GRANT pg_signal_backend TO slipway"
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'slipway'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE slipway OWNER slipway"
  fi
  # PostgreSQL grants CONNECT on every database to PUBLIC: a site's role could open the
  # cluster's own databases. Slipway closes the control plane's and the tenant database
  # itself; these two belong to the superuser, so the installation closes them.
  psql_admin -c "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC" \
             -c "REVOKE CONNECT ON DATABASE template1 FROM PUBLIC"
  echo "PostgreSQL is up: postgres://slipway@127.0.0.1:$PORT/slipway"
}

case "${1:-}" in
  start) start ;;
  stop) as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast stop ;;
  status) as_owner "$PGBIN/pg_ctl" -D "$DATA" status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
