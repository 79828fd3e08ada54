#!/usr/bin/env bash
# bench/streams/run.sh [BUILD_DIR] — N concurrent streams through the daemon
# against an upstream that dribbles one token a second (issue 17, target 6).
#
# Starts on loopback:
#   - upstream.mjs (Node 20, built-in http/http2): OpenAI chat-completions SSE,
#     one content chunk a second for D seconds, then [DONE]; HTTP/1.1 and h2c;
#   - the daemon (openai provider -> that upstream, SQLite storage);
#   - stream_client (C++, one epoll thread, built here): N streamed POST
#     /v1/chat/completions held open at once.
# Baseline in the same run: the same client straight against the upstream.
#
# Reports errors, the daemon's threads, RSS idle / at peak / per stream, its
# CPU (utime+stime of /proc/PID/stat) per relayed chunk, and each stream's
# duration at the client against the upstream's D (p50/p99, % over), the
# direct run's the same way with the client's own CPU.
#
# Environment:
#   N=10000 D=10          streams, and seconds per stream
#   RATE=2000             connections opened per second by the client
#   HTTP_VERSION=2-prior-knowledge  the provider's `http: { version }`
#                         ("1.1", "2", "auto"; "none" omits the key, for a
#                         daemon that predates it; it then speaks HTTP/1.1)
#   BASELINE=1            0 skips the direct run
#   QUICK=1               N=500 D=3
#   PERF_OUT=FILE         perf record -g of the daemon during the run
#   STRACE_OUT=FILE       strace -f of the daemon instead (STRACE_ARGS, default -c:
#                         system calls counted)
# With HTTP/1.1 to the upstream the daemon holds two fds per stream; the fd
# limit here is 20,000 per process, so N above ~9,500 needs HTTP/2.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "${1:-/work/main/build}" && pwd)"
if [[ "${QUICK:-0}" == 1 ]]; then N="${N:-500}" D="${D:-3}"; fi
N="${N:-10000}"
D="${D:-10}"
RATE="${RATE:-2000}"
HTTP_VERSION="${HTTP_VERSION:-2-prior-knowledge}"
BASELINE="${BASELINE:-1}"
BENCH_NAME="streams/run.sh"
. "$HERE/../lib.sh"

SWARMHOST="$BUILD/host/swarmhost"
for f in "$SWARMHOST" "$BUILD/plugins/swh_provider_openai.so" "$BUILD/plugins/swh_storage_sqlite.so"; do
  [[ -e "$f" ]] || { echo "$BENCH_NAME: missing $f" >&2; exit 2; }
done
for tool in node c++ curl python3; do
  command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool not installed" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)"

bench_init streams
echo "# streams: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# build: $BUILD (swarmhost $(sha256sum "$SWARMHOST" | cut -c1-12) of $(date -u -r "$SWARMHOST" +%H:%M:%SZ))," \
     "N=$N D=${D}s RATE=$RATE/s HTTP_VERSION=$HTTP_VERSION, fd limit $(ulimit -n)"

c++ -O2 -std=c++20 -o "$TMP/stream_client" "$HERE/stream_client.cpp"

H1_PORT="$(free_port)"
H2_PORT="$(free_port)"
bench_spawn "$TMP/upstream.log" node "$HERE/upstream.mjs" --h1-port "$H1_PORT" --h2-port "$H2_PORT" --seconds "$D"
UP_PID=$SPAWNED_PID
wait_http "http://127.0.0.1:$H1_PORT/v1/models" "$UP_PID" upstream "$TMP/upstream.log"

BODY='{"model":"up","stream":true,"messages":[{"role":"user","content":"hello"}]}'
printf '%s' "$BODY" > "$TMP/body.json"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime+stime in clock ticks
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
HZ="$(getconf CLK_TCK)"

# Samples VmRSS (max) and Threads (max) of PID every 0.2 s into FILE until killed.
sampler() { # PID FILE
  local max_rss=0 max_thr=0 rss thr
  while kill -0 "$1" 2>/dev/null; do
    rss="$(status_kb "$1" VmRSS || echo 0)"; thr="$(status_kb "$1" Threads || echo 0)"
    (( rss > max_rss )) && max_rss=$rss
    (( thr > max_thr )) && max_thr=$thr
    echo "$max_rss $max_thr" > "$2"
    sleep 0.2
  done
}

DIRECT=""
if [[ "$BASELINE" == 1 ]]; then
  up0="$(ticks "$UP_PID")"
  DIRECT="$("$TMP/stream_client" "$H1_PORT" "$N" "$TMP/body.json" "$RATE" || true)"
  DIRECT="$DIRECT upstream_ticks=$(( $(ticks "$UP_PID") - up0 ))"
  echo "# direct: $DIRECT"
fi

PORT="$(free_port)"
if [[ "$HTTP_VERSION" == 2-prior-knowledge ]]; then UP_URL="http://127.0.0.1:$H2_PORT/v1"; else UP_URL="http://127.0.0.1:$H1_PORT/v1"; fi
HTTP_KEY="$HTTP_VERSION"
[[ "$HTTP_VERSION" != none ]] || HTTP_KEY="" # a daemon that predates the key
write_proxy_daemon_config "$TMP/swarmhost.yaml" "$PORT" "$UP_URL" 0 "$HTTP_KEY"
bench_spawn "$TMP/swarmhost.log" "$SWARMHOST" serve -c "$TMP/swarmhost.yaml" --log-level warn
DAEMON_PID=$SPAWNED_PID
wait_http "http://127.0.0.1:$PORT/healthz" "$DAEMON_PID" swarmhost "$TMP/swarmhost.log"
# One stream first, so the idle figure includes what the first request sets
# up (the HTTP client's threads, the provider's state).
"$TMP/stream_client" "$PORT" 1 "$TMP/body.json" > /dev/null || bench_die "one stream through the daemon failed"
sleep 0.5
IDLE_RSS="$(status_kb "$DAEMON_PID" VmRSS)"
IDLE_THREADS="$(status_kb "$DAEMON_PID" Threads)"

sampler "$DAEMON_PID" "$TMP/peak" &
SAMPLER=$!
perf_pid=""
if [[ -n "${STRACE_OUT:-}" ]]; then
  timeout "$D" strace -f ${STRACE_ARGS:--c} -o "$STRACE_OUT" -p "$DAEMON_PID" >/dev/null 2>&1 &
  perf_pid=$!
elif [[ -n "${PERF_OUT:-}" ]]; then
  perf record -q -g -p "$DAEMON_PID" -o "$PERF_OUT" -- sleep "$D" >/dev/null 2>&1 &
  perf_pid=$!
fi
d0="$(ticks "$DAEMON_PID")"
VIA="$("$TMP/stream_client" "$PORT" "$N" "$TMP/body.json" "$RATE" || true)"
d1="$(ticks "$DAEMON_PID")"
[[ -z "$perf_pid" ]] || wait "$perf_pid" || true
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
read -r PEAK_RSS PEAK_THREADS < "$TMP/peak"
echo "# daemon: $VIA"
bench_stop "$DAEMON_PID"
bench_stop "$UP_PID"
DAEMON_ERRORS="$(grep -ciE '(error|critical)' "$TMP/swarmhost.log" || true)"

export N D HTTP_VERSION DIRECT VIA IDLE_RSS IDLE_THREADS PEAK_RSS PEAK_THREADS DAEMON_ERRORS HZ
export DAEMON_TICKS=$(( d1 - d0 ))
python3 - <<'PY'
import os
e = os.environ
kv = lambda s: {k: v for k, v in (p.split("=", 1) for p in s.split() if "=" in p)}
n, d = int(e["N"]), float(e["D"])
via = kv(e["VIA"])
if not via:
    raise SystemExit("streams/run.sh: the client printed no RESULT through the daemon")
chunks = int(via["chunks"])
cpu = int(e["DAEMON_TICKS"]) / int(e["HZ"])
over = lambda s: f"{(float(s) / d - 1) * 100:+.1f}%"
peak, idle = int(e["PEAK_RSS"]), int(e["IDLE_RSS"])
print(f"daemon ({e['HTTP_VERSION']}): streams={n} ok={via['ok']} errors={via['errors']} "
      f"(refused {via.get('err_connect')}, not 200 {via.get('err_status')}, cut {via.get('err_cut')}) "
      f"chunks={chunks}/{n * int(d)} log_errors={e['DAEMON_ERRORS']}")
print(f"  threads idle={e['IDLE_THREADS']} peak={e['PEAK_THREADS']}; "
      f"RSS idle={idle / 1024:.1f} MB peak={peak / 1024:.1f} MB "
      f"per stream={(peak - idle) / max(1, n):.1f} KB")
print(f"  CPU {cpu:.2f} s over the run = {cpu / max(1, chunks) * 1e6:.1f} us per relayed chunk")
print(f"  duration at the client: p50={via['p50_s']} s ({over(via['p50_s'])}) "
      f"p99={via['p99_s']} s ({over(via['p99_s'])}) max={via['max_s']} s ({over(via['max_s'])}) "
      f"against the upstream's {d:g} s; wall {via['wall_s']} s")
if e.get("DIRECT"):
    dr = kv(e["DIRECT"])
    print(f"direct: streams={n} ok={dr.get('ok')} errors={dr.get('errors')} chunks={dr.get('chunks')}; "
          f"p50={dr.get('p50_s')} s ({over(dr.get('p50_s', 0))}) p99={dr.get('p99_s')} s "
          f"({over(dr.get('p99_s', 0))}); client CPU {dr.get('cpu_s')} s "
          f"= {float(dr.get('cpu_s', 0)) / max(1, int(dr.get('chunks', 0))) * 1e6:.1f} us per chunk; "
          f"upstream CPU {int(dr.get('upstream_ticks', 0)) / int(e['HZ']):.2f} s")
PY
