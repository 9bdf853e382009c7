#!/usr/bin/env bash
# Refreshes .sqlx/ (the query metadata offline builds check SQL against): applies every
# migration to a scratch database, re-expands each `sqlx::query!` against it, drops it.
# Independent of the state of the development database.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${DEV_PG_PORT:-55432}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
SCRATCH=slipway_sqlx_prepare
psql_as() { "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -v ON_ERROR_STOP=1 -qAt "$@"; }

psql_as -U postgres -c "DROP DATABASE IF EXISTS $SCRATCH WITH (FORCE)" -c "CREATE DATABASE $SCRATCH OWNER slipway"
for migration in migrations/*.sql; do
  psql_as -U slipway -d "$SCRATCH" -f "$migration" >/dev/null
done
rm -rf .sqlx && mkdir -p .sqlx
cargo clean -p platform -p server -p app -p end2end
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" \
  DATABASE_URL="postgres://slipway@127.0.0.1:$PORT/$SCRATCH" \
  cargo check --workspace --exclude frontend --all-targets
psql_as -U postgres -c "DROP DATABASE $SCRATCH WITH (FORCE)"
echo "queries in .sqlx: $(ls .sqlx | wc -l)"
