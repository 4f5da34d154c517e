#!/usr/bin/env bash
# Benchmarks. Servers (PostgreSQL, Redis, the HTTP bench server) listen on
# 127.0.0.1 only and are stopped by PID on exit.
#
#   bash scripts/bench.sh            # all: criterion, then end to end over HTTP
#   bash scripts/bench.sh criterion  # the criterion benches (validate, denylist,
#                                    # propagation, sessions), then memory
#   bash scripts/bench.sh http       # end to end over HTTP only
#
# `http`: the same axum app (package jwt-revoke-bench-http, bench-http/) as
# (a) jwt-revoke's RevokeLayer over a MemoryStore, (b) a plain
# jsonwebtoken::decode middleware, (c) decode plus a Redis GET of a
# per-token denylist key, each with HS256 and ES256 tokens, driven by wrk
# (installed with apt when missing) on this machine. Two token mixes: one
# token repeated (a client making several requests) and BENCH_TOKENS
# distinct tokens in turn (each comes back only after all the others went
# by: more than the verified-token cache holds). The whole matrix runs
# BENCH_ROUNDS times, interleaved, so that a burst of other work on the
# machine lands on every variant alike; the table and the plot take the
# median of the rounds. Writes docs/bench-http.csv (one row per run),
# redraws docs/bench-http.svg (scripts/plot_bench_http.py) and prints the
# table.
#
# Settings (environment):
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_WARMUP       warm-up seconds before each run (default 2)
#   BENCH_ROUNDS       rounds of the whole matrix (default 3)
#   BENCH_CONNECTIONS  open connections (default 32)
#   BENCH_WRK_THREADS  wrk threads (default 1: the server keeps a core)
#   BENCH_TOKENS       distinct tokens (and subjects) (default 20000)
#   BENCH_MIXES        token mixes to run (default "repeat distinct")
#   BENCH_PORT         the bench server's port on 127.0.0.1 (default 18080)
#   BENCH_OUT          CSV to write (default docs/bench-http.csv)
set -euo pipefail
cd "$(dirname "$0")/.."
# Servers of its own, apart from those of a test run on the same machine
# (scripts/test.sh uses services.sh's defaults).
JR_STATE="${JR_STATE:-${TMPDIR:-/tmp}/jwt-revoke-bench-services}"
JR_REDIS_PORT="${JR_REDIS_PORT:-6393}"
JR_PG_PORT="${JR_PG_PORT:-5441}"
source scripts/services.sh

criterion() {
  cargo bench --bench validate
  cargo bench --features sqlite,postgres,redis --bench denylist
  cargo bench --features postgres,redis --bench propagation
  cargo bench --features sqlite,postgres,redis --bench sessions
  cargo run --release --example memory -- 1000000 100000
}

SERVER_PID=""
HTTP_TMP=""

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

cleanup() {
  stop_server
  [ -n "$HTTP_TMP" ] && rm -rf "$HTTP_TMP"
  services_stop
}

http_bench() {
  local seconds="${BENCH_SECONDS:-10}" warmup="${BENCH_WARMUP:-2}"
  local connections="${BENCH_CONNECTIONS:-32}" wrk_threads="${BENCH_WRK_THREADS:-1}"
  local ntokens="${BENCH_TOKENS:-20000}" mixes="${BENCH_MIXES:-repeat distinct}"
  local rounds="${BENCH_ROUNDS:-3}"
  local port="${BENCH_PORT:-18080}" out="${BENCH_OUT:-docs/bench-http.csv}"
  local base="http://127.0.0.1:$port"

  if ! command -v wrk >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "bench.sh: wrk missing: apt-get install -y wrk" >&2; exit 1; }
    echo "bench.sh: installing wrk" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "bench.sh: 127.0.0.1:$port is in use (set BENCH_PORT)" >&2
    exit 1
  fi

  cargo build --release -p jwt-revoke-bench-http
  local target="${CARGO_TARGET_DIR:-target}"
  local bin="$target/release/jwt-revoke-bench-http"

  HTTP_TMP=$(mktemp -d)
  local alg variant mix round
  for alg in hs256 es256; do
    "$bin" tokens "$alg" "$ntokens" >"$HTTP_TMP/$alg.jwt"
  done

  echo "round,algorithm,variant,tokens,requests_per_s,p50_us,p99_us,requests,seconds,connections,verified_hit_pct" \
    >"$HTTP_TMP/results.csv"
  for round in $(seq 1 "$rounds"); do
  for alg in hs256 es256; do
    local token
    token=$(head -n 1 "$HTTP_TMP/$alg.jwt")
    for variant in revoke decode redis; do
      BIND="127.0.0.1:$port" SUBJECTS="$ntokens" "$bin" serve "$variant" "$alg" \
        2>"$HTTP_TMP/server.log" &
      SERVER_PID=$!
      local up=""
      for _ in $(seq 1 100); do
        if curl -fsS "$base/health" >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
      done
      [ -n "$up" ] || { cat "$HTTP_TMP/server.log" >&2; echo "bench.sh: server did not start" >&2; exit 1; }

      # The variant does what it says before it is timed: a token is
      # accepted, no token is refused, and (redis) a listed jti is refused.
      expect_status 200 "$base/me" -H "Authorization: Bearer $token"
      expect_status 401 "$base/me"
      if [ "$variant" = redis ]; then
        redis-cli -h 127.0.0.1 -p "$JR_REDIS_PORT" SET denylist:t-0 1 >/dev/null
        expect_status 401 "$base/me" -H "Authorization: Bearer $token"
        redis-cli -h 127.0.0.1 -p "$JR_REDIS_PORT" DEL denylist:t-0 >/dev/null
      fi

      for mix in $mixes; do
        local args=(-t "$wrk_threads" -c "$connections" -s bench-http/wrk.lua --timeout 5s)
        local env=()
        case "$mix" in
          repeat) args+=(-H "Authorization: Bearer $token") ;;
          distinct) env=(BENCH_TOKENS_FILE="$HTTP_TMP/$alg.jwt") ;;
          *) echo "bench.sh: unknown mix $mix" >&2; exit 1 ;;
        esac
        # A run with an error is not a measurement: run it again, at most
        # twice more (a burst of other work on the machine can push a Redis
        # call past its timeout).
        local attempt line requests duration p50 p99 errors before after hit_pct
        for attempt in 1 2 3; do
          env "${env[@]}" wrk "${args[@]}" -d "${warmup}s" "$base/me" >/dev/null
          before="" hit_pct=""
          [ "$variant" = revoke ] && before=$(curl -fsS "$base/stats")
          env "${env[@]}" wrk "${args[@]}" -d "${seconds}s" "$base/me" >"$HTTP_TMP/wrk.out"
          if [ "$variant" = revoke ]; then
            # The share of accepted requests that skipped the signature check.
            after=$(curl -fsS "$base/stats")
            hit_pct=$(printf '%s\n%s\n' "$before" "$after" | awk '
              $1 == "accepted" { a[n_a++] = $2 } $1 == "verified_hits" { v[n_v++] = $2 }
              END { d = a[1] - a[0]; printf "%.1f", (d > 0 ? 100 * (v[1] - v[0]) / d : 0) }')
          fi
          line=$(grep '^RESULT ' "$HTTP_TMP/wrk.out") || { cat "$HTTP_TMP/wrk.out" >&2; exit 1; }
          requests=$(field requests "$line"); duration=$(field duration_us "$line")
          p50=$(field p50_us "$line"); p99=$(field p99_us "$line"); errors=$(field errors "$line")
          [ "$errors" = 0 ] && break
          cat "$HTTP_TMP/wrk.out" >&2
          echo "bench.sh: $alg $variant $mix: $errors errors (attempt $attempt of 3)" >&2
        done
        if [ "$errors" != 0 ]; then
          echo "bench.sh: $alg $variant $mix: errors in every attempt: not a measurement" >&2
          exit 1
        fi
        local rps
        rps=$(awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r * 1e6 / d }')
        echo "$round,$alg,$variant,$mix,$rps,$p50,$p99,$requests,$seconds,$connections,$hit_pct" \
          >>"$HTTP_TMP/results.csv"
        printf 'bench.sh: round %s %-6s %-7s %-9s %8s req/s  p50 %6s us  p99 %6s us %s\n' \
          "$round" "$alg" "$variant" "$mix" "$rps" "$p50" "$p99" \
          "${hit_pct:+ verified-token cache hits ${hit_pct} %}" >&2
      done
      stop_server
    done
  done
  done

  mkdir -p "$(dirname "$out")"
  cp "$HTTP_TMP/results.csv" "$out"
  python3 scripts/plot_bench_http.py "$out" "${out%.csv}.svg"
}

# expect_status CODE URL [curl args...]
expect_status() {
  local want=$1 url=$2 got
  shift 2
  got=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url")
  if [ "$got" != "$want" ]; then
    echo "bench.sh: $url answered $got, expected $want" >&2
    exit 1
  fi
}

# field NAME "RESULT a=1 b=2"
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

trap cleanup EXIT
services_start
case "${1:-all}" in
  criterion) criterion ;;
  http) http_bench ;;
  all) criterion; http_bench ;;
  *) echo "usage: $0 [all|criterion|http]" >&2; exit 2 ;;
esac
