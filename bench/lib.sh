# shellcheck shell=bash
# bench/lib.sh — shell helpers shared by the benchmark scripts. Source it:
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
#   bench_init NAME        makes the temp dir $TMP (/tmp/swh-bench-NAME.XXXXXX)
#                          and installs the EXIT/INT/TERM traps that stop
#                          every process started with bench_spawn and remove $TMP
#   bench_spawn LOG CMD... runs CMD in the background (stdout+stderr to LOG),
#                          remembers it for the cleanup; its pid in $SPAWNED_PID
#   bench_stop PID         TERM, up to 5 s, then KILL; forgets the pid
#   free_port              a free loopback TCP port
#   wait_http URL PID NAME LOG   until URL answers 2xx (10 s), or fail
#                          showing LOG if the process PID died
#   run_wrk NAME THREADS CONNS SCRIPT URL [SCRIPT ARGS...]
#                          one wrk run of $DURATION seconds; echoes the RESULT
#                          line's key=value pairs (see http_send/wrk_common.lua),
#                          keeps wrk's own output in $TMP/wrk-NAME.txt
#   field KEY LINE         the value of KEY in a key=value line
#   start_fixed_nginx      nginx with bench/proxy/nginx.conf.in: fixed OpenAI
#                          replies from memory at $NGINX (/v1 and /stream/v1),
#                          the same behind nginx as a keep-alive reverse proxy
#                          at $NGINX_PROXY; its pid in $NGINX_PID
#   write_proxy_daemon_config FILE PORT BASE_URL   the proxy benches' daemon
#                          manifest: SQLite in $TMP, provider "up" -> BASE_URL
#   start_static_nginx FILE  nginx serving FILE as a static JSON file, keep-alive,
#                          at $STATIC_URL; its pid in $NGINX_PID
#   start_postgres         one real PostgreSQL 15 on loopback through
#                          tests/tooling/swh_servers.py: its conninfo in
#                          $CONNINFO, the supervisor's pid in $PG_SUPERVISOR
# Messages are prefixed with $BENCH_NAME (the script's name by default).

BENCH_NAME="${BENCH_NAME:-$(basename "$(dirname "$0")")/$(basename "$0")}"
BENCH_PIDS=()
TMP=""

bench_die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

bench_stop() { # PID
  local pid="$1" _
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [[ "$p" == "$pid" ]] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do bench_stop "$p"; done
  [[ -n "$TMP" && -d "$TMP" ]] && rm -rf "$TMP"
  return 0
}

bench_init() { # NAME
  TMP="$(mktemp -d "/tmp/swh-bench-$1.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_spawn() { # LOG CMD...
  local log="$1"
  shift
  "$@" > "$log" 2>&1 &
  SPAWNED_PID=$!
  BENCH_PIDS+=("$SPAWNED_PID")
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # URL PID NAME LOG
  local _
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "$BENCH_NAME: $3 exited; log:" >&2; cat "$4" >&2; exit 1; }
    sleep 0.1
  done
  bench_die "$3 did not answer $1 within 10 s"
}

run_wrk() { # NAME THREADS CONNECTIONS SCRIPT URL [SCRIPT ARGS...]
  local name="$1" threads="$2" conns="$3" script="$4" url="$5"
  shift 5
  wrk -t"$threads" -c"$conns" -d"${DURATION:-10}s" --timeout 10s --latency -s "$script" "$url" ${1:+--} "$@" \
    > "$TMP/wrk-$name.txt" 2>&1 || { echo "$BENCH_NAME: wrk $name failed:" >&2; cat "$TMP/wrk-$name.txt" >&2; exit 1; }
  local line
  line="$(grep '^RESULT ' "$TMP/wrk-$name.txt" || true)"
  [[ -n "$line" ]] || { echo "$BENCH_NAME: wrk $name printed no RESULT:" >&2; cat "$TMP/wrk-$name.txt" >&2; exit 1; }
  echo "${line#RESULT }"
}

field() { # KEY LINE -> value
  sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"
}

start_fixed_nginx() {
  local conf_in port proxy_port
  conf_in="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/proxy/nginx.conf.in"
  port="$(free_port)"
  proxy_port="$(free_port)"
  mkdir -p "$TMP/nginx/tmp"
  sed -e "s|@TMP@|$TMP/nginx|g" -e "s|@PORT@|$port|g" -e "s|@PROXY_PORT@|$proxy_port|g" \
    "$conf_in" > "$TMP/nginx/nginx.conf"
  bench_spawn "$TMP/nginx/stdout.log" nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx"
  NGINX_PID=$SPAWNED_PID
  NGINX="http://127.0.0.1:$port"
  NGINX_PROXY="http://127.0.0.1:$proxy_port"
  wait_http "$NGINX/v1/chat/completions" "$NGINX_PID" nginx "$TMP/nginx/error.log"
}

# The daemon of the proxy and stream benches: listening on PORT with no cap
# on connections, SQLite in $TMP, one openai provider "up" in front of
# BASE_URL (no key, no retries), its request timeout TIMEOUT_MS (default
# 10000; 0 = none) and, when given, its `http: { version }`.
write_proxy_daemon_config() { # FILE PORT BASE_URL [TIMEOUT_MS] [HTTP_VERSION]
  local http_key=""
  [[ -z "${5:-}" ]] || http_key="    http: { version: \"$5\" }"
  cat > "$1" <<EOF
server:
  listen: "127.0.0.1:$2"
  max_connections: 0
plugin_dirs: [ "$BUILD/plugins" ]
storage:
  plugin: sqlite
  config: { path: "$TMP/swarmhost.db" }
providers:
  - name: up
    plugin: openai
    config: { base_url: "$3", api_key_env: "", retries: 0, timeout_ms: ${4:-10000} }
$http_key
EOF
}

start_static_nginx() { # FILE
  local name port
  name="$(basename "$1")"
  port="$(free_port)"
  mkdir -p "$TMP/nginx/www" "$TMP/nginx/tmp"
  cp "$1" "$TMP/nginx/www/$name"
  # nginx workers run unprivileged: let them traverse the temp dir and read the file.
  chmod 711 "$TMP" "$TMP/nginx"
  chmod 755 "$TMP/nginx/www"
  chmod 644 "$TMP/nginx/www/$name"
  cat > "$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/tmp/body;
  proxy_temp_path $TMP/nginx/tmp/proxy;
  fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
  uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
  scgi_temp_path $TMP/nginx/tmp/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $TMP/nginx/www; default_type application/json; }
}
EOF
  bench_spawn "$TMP/nginx/stdout.log" nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx"
  NGINX_PID=$SPAWNED_PID
  STATIC_URL="http://127.0.0.1:$port/$name"
  wait_http "$STATIC_URL" "$NGINX_PID" nginx "$TMP/nginx/error.log"
}

start_postgres() {
  local repo _
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # The supervisor keeps the server while its stdin is open (fd 3 here) and
  # tears it down on EOF or TERM (the FIFO is opened read-write first:
  # opening it for reading alone blocks until a writer comes). Not
  # bench_spawn: a background command without its own `<` reads /dev/null.
  mkfifo "$TMP/pg.in"
  exec 3<> "$TMP/pg.in"
  python3 "$repo/tests/tooling/swh_servers.py" serve postgres < "$TMP/pg.in" > "$TMP/pg.out" 2>&1 &
  PG_SUPERVISOR=$!
  BENCH_PIDS+=("$PG_SUPERVISOR")
  for _ in $(seq 300); do
    [[ -s "$TMP/pg.out" ]] && break
    kill -0 "$PG_SUPERVISOR" 2>/dev/null || { cat "$TMP/pg.out" >&2; bench_die "postgres supervisor exited"; }
    sleep 0.1
  done
  local info
  info="$(head -1 "$TMP/pg.out")"
  CONNINFO="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["conninfo"])' "$info" 2>/dev/null)" ||
    bench_die "postgres did not start: $info"
}
