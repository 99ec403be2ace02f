#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the tests marked `postgres`, and print the line
#   export ARENA_TEST_PG_URL=postgresql+psycopg://arena:arena@127.0.0.1:PORT/arena_test
# on stdout (logs go to stderr), so CI does:  eval "$(.ci/postgres.sh)"
# Installs Debian's postgresql if no server binaries are found. Idempotent: a server already answering on the port
# is reused. Environment: ARENA_PG_PORT (default 55432), ARENA_PG_DIR (data folder, default /tmp/arena-pg).
set -euo pipefail
PORT="${ARENA_PG_PORT:-55432}"
DATA="${ARENA_PG_DIR:-/tmp/arena-pg}"
log() { echo "postgres.sh: $*" >&2; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] && ! command -v initdb >/dev/null 2>&1; then
  log "installing postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
[ -n "$bindir" ] && export PATH="$bindir:$PATH"

# run as the postgres user when we are root (initdb refuses root)
as_pg() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "PATH='$PATH' $*"; else bash -c "$*"; fi
}

if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
  log "a server already answers on 127.0.0.1:$PORT; reusing it"
else
  if [ ! -s "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres: "$DATA"
    chmod 700 "$DATA"
    as_pg "initdb -D '$DATA' -U postgres -A trust --no-sync >/dev/null"
  fi
  as_pg "pg_ctl -D '$DATA' -l '$DATA/server.log' -w -t 60 \
    -o \"-c listen_addresses=127.0.0.1 -p $PORT -k '$DATA' -c fsync=off -c max_connections=100\" start >/dev/null"
  log "started PostgreSQL ($(postgres --version)) in $DATA on 127.0.0.1:$PORT"
fi

psql_pg() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_roles WHERE rolname='arena'")" != 1 ]; then
  psql_pg -c "CREATE ROLE arena LOGIN PASSWORD 'arena'" >&2
fi
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname='arena_test'")" != 1 ]; then
  psql_pg -c "CREATE DATABASE arena_test OWNER arena" >&2
fi
echo "export ARENA_TEST_PG_URL=postgresql+psycopg://arena:arena@127.0.0.1:$PORT/arena_test"
