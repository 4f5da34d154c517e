#!/usr/bin/env bash
# Test servers for the PostgreSQL and Redis stores, on 127.0.0.1 only.
#
# Sourced by scripts/test.sh (services_start / services_stop), or run by hand:
#   bash scripts/services.sh start   # prints the export lines, leaves servers running
#   bash scripts/services.sh stop
# Installs redis-server and postgresql with apt when missing (needs root).
# Servers use non-default ports and throwaway data directories, and are
# stopped by PID.

JR_REDIS_PORT="${JR_REDIS_PORT:-6391}"
JR_PG_PORT="${JR_PG_PORT:-5439}"
JR_STATE="${JR_STATE:-${TMPDIR:-/tmp}/jwt-revoke-services}"

_jr_die() { echo "services.sh: $*" >&2; return 1; }

_jr_pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

_jr_install() {
  local need=()
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  _jr_pg_bin >/dev/null || need+=(postgresql)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    _jr_die "missing ${need[*]} and not root: install them (apt-get install -y ${need[*]})"
    return 1
  fi
  echo "services.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null \
    || { _jr_die "apt-get install ${need[*]} failed"; return 1; }
  # The Debian packages start their own default servers; this project does
  # not use them, and their ports differ from ours.
}

_jr_wait() { # command... ; retries for up to 30 s
  local i
  for i in $(seq 1 150); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

services_start() {
  _jr_install || return 1
  rm -rf "$JR_STATE" && mkdir -p "$JR_STATE" || return 1

  # Redis: loopback only, with the append-only file on (in the throwaway
  # state directory) and no eviction, as RedisStore::connect requires of a
  # server that keeps revocations (a server without persistence, or one
  # that may evict keys, is refused unless the store is told to accept it).
  redis-server --bind 127.0.0.1 --port "$JR_REDIS_PORT" --save '' --appendonly yes \
    --appendfsync everysec --maxmemory-policy noeviction \
    --dir "$JR_STATE" --daemonize no >"$JR_STATE/redis.log" 2>&1 &
  echo $! >"$JR_STATE/redis.pid"
  if ! _jr_wait redis-cli -h 127.0.0.1 -p "$JR_REDIS_PORT" ping; then
    cat "$JR_STATE/redis.log" >&2
    _jr_die "redis-server did not start on 127.0.0.1:$JR_REDIS_PORT"
    return 1
  fi

  # PostgreSQL: a throwaway cluster owned by the postgres OS user (initdb
  # refuses to run as root), trust auth on loopback.
  local bin pgdata run_as=()
  bin=$(_jr_pg_bin) || { _jr_die "PostgreSQL binaries not found"; return 1; }
  pgdata="$JR_STATE/pgdata"
  mkdir -p "$pgdata"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$JR_STATE"
    chmod 755 "$JR_STATE"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 \
    >"$JR_STATE/initdb.log" 2>&1 \
    || { cat "$JR_STATE/initdb.log" >&2; _jr_die "initdb failed"; return 1; }
  "${run_as[@]}" "$bin/postgres" -D "$pgdata" -h 127.0.0.1 -p "$JR_PG_PORT" \
    -k "$JR_STATE" -c fsync=off -c max_connections=200 >"$JR_STATE/postgres.log" 2>&1 &
  echo $! >"$JR_STATE/postgres.pid"
  if ! _jr_wait "$bin/pg_isready" -h 127.0.0.1 -p "$JR_PG_PORT"; then
    cat "$JR_STATE/postgres.log" >&2
    _jr_die "postgres did not start on 127.0.0.1:$JR_PG_PORT"
    return 1
  fi
  "$bin/psql" -h 127.0.0.1 -p "$JR_PG_PORT" -U postgres -qc "CREATE DATABASE jwt_revoke_test" \
    >/dev/null || { _jr_die "cannot create the test database"; return 1; }

  export REDIS_URL="redis://127.0.0.1:$JR_REDIS_PORT/"
  export POSTGRES_URL="postgres://postgres@127.0.0.1:$JR_PG_PORT/jwt_revoke_test"
  echo "services.sh: redis on 127.0.0.1:$JR_REDIS_PORT, postgres on 127.0.0.1:$JR_PG_PORT" >&2
}

services_stop() {
  local name pid
  for name in postgres redis; do
    if [ -f "$JR_STATE/$name.pid" ]; then
      pid=$(cat "$JR_STATE/$name.pid")
      kill "$pid" 2>/dev/null || true
      # Wait (bounded) for a clean exit, then insist.
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$JR_STATE"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      services_start
      echo "export REDIS_URL=$REDIS_URL"
      echo "export POSTGRES_URL=$POSTGRES_URL"
      ;;
    stop) services_stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
  esac
fi
