#!/usr/bin/env bash
# bench/proxy/instructions.sh [BUILD_DIR] — instructions per proxied chat
# completion, counted by callgrind: a figure a loaded machine does not move
# (issue 17). The daemon (openai provider -> the nginx fixed upstream of
# bench/proxy/nginx.conf.in, SQLite storage, no session) runs under
# valgrind --tool=callgrind; wrk warms it for 3 s, the counters are zeroed,
# wrk sends for $DURATION s (2 threads, 8 connections), the counters are
# dumped and divided by the requests wrk counted.
# Prints instructions, malloc calls and the top functions by own cost per
# request, then `SUMMARY instructions key=value ...`.
# Environment: DURATION (10), TOP (25), KEEP_PROFILE (a file to copy the
# callgrind profile to), SWARMHOST_UPSTREAM_CLIENT (passed to
# the daemon: "curl" measures the libcurl path). Needs valgrind, wrk, nginx
# (tools/install-deps.sh --bench). Loopback only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "${1:-/work/main/build}" && pwd)"
DURATION="${DURATION:-10}"
TOP="${TOP:-25}"
BENCH_NAME="proxy/instructions.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"
for tool in valgrind callgrind_control wrk nginx python3; do
  command -v "$tool" >/dev/null || bench_die "$tool not installed (tools/install-deps.sh --bench)"
done
bench_init instructions
start_fixed_nginx
PORT="$(free_port)"
write_proxy_daemon_config "$TMP/swarmhost.yaml" "$PORT" "$NGINX/v1"
bench_spawn "$TMP/swarmhost.log" valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" --dump-instr=no \
  "$BUILD/host/swarmhost" serve -c "$TMP/swarmhost.yaml" --log-level warn
DAEMON_PID=$SPAWNED_PID
for _ in $(seq 300); do # valgrind starts slowly
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$TMP/swarmhost.log" >&2; bench_die "the daemon exited"; }
  sleep 0.2
done
cat > "$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"up","messages":[{"role":"user","content":"hello world"}]}'
wrk.headers["Content-Type"] = "application/json"
LUA
URL="http://127.0.0.1:$PORT/v1/chat/completions"
echo "# instructions: $(date -u +%Y-%m-%dT%H:%M:%SZ), build $BUILD, swarmhost $(sha256sum "$BUILD/host/swarmhost" | cut -c1-12)," \
     "SWARMHOST_UPSTREAM_CLIENT=${SWARMHOST_UPSTREAM_CLIENT:-}"
wrk -t1 -c1 -d3 -s "$TMP/post.lua" "$URL" > /dev/null
callgrind_control -z "$DAEMON_PID" > /dev/null 2>&1
REQUESTS="$(wrk -t2 -c8 -d"$DURATION" -s "$TMP/post.lua" "$URL" | awk '/requests in/{print $1}')"
callgrind_control -d "$DAEMON_PID" > /dev/null 2>&1
sleep 1
[[ -s "$TMP/cg.out.1" ]] || bench_die "callgrind wrote no dump"
python3 "$HERE/callgrind_top.py" "$TMP/cg.out.1" "$REQUESTS" "$TOP"
[[ -z "${KEEP_PROFILE:-}" ]] || cp "$TMP/cg.out.1" "$KEEP_PROFILE"
