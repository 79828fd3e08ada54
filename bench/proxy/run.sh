#!/usr/bin/env bash
# bench/proxy/run.sh [BUILD_DIR] — what the daemon adds in front of an
# OpenAI-compatible server, on its OpenAI front door (POST /v1/chat/completions).
# The "LLM" is nginx returning fixed replies from memory (nginx.conf.in), so
# the upstream costs next to nothing and the daemon's share shows:
#   1. wrk, 1 and 64 connections: POST /v1/chat/completions with model "up"
#      to the daemon (openai plugin -> nginx /v1) vs the same wrk straight to
#      nginx and through nginx as a keep-alive reverse proxy (the hop a
#      gateway is compared with). req/s, p50/p99, daemon/direct and
#      daemon/nginx-proxy ratios, p50 added per request.
#   2. X-Swarmhost-Overhead-Ms (the daemon's own time per exchange) over
#      $SAMPLES sequential requests (one curl, one kept-alive connection),
#      alternating with as many straight to nginx: header vs what the same
#      client measured (issue 17 target 7).
#   3. Streaming: $SAMPLES streamed requests (model "upstream_stream" ->
#      nginx /stream/v1) through the daemon vs straight to nginx, alternating,
#      time to the first data line / first content token / [DONE] (ttfb.py),
#      and the stream's gateway_overhead_ms against the [DONE] difference
#      (target 7's streamed figure).
# Builds nothing: BUILD_DIR (default /work/main/build) must hold host/swarmhost,
# plugins/swh_provider_openai.so and plugins/swh_storage_sqlite.so.
# Environment: DURATION (wrk seconds, default 10), THREADS (wrk threads,
# default 2; 1 for the 1-connection runs), CONNECTIONS (default "1 64"),
# SAMPLES (default 200), PERF_OUT (if set: `perf record -g` of the daemon
# during its wrk run at the last connection count, written to that file;
# read it with `perf report -i FILE --no-children`), TRACING (1: the daemon
# exports a span per request step with OTLP/HTTP to nginx's /v1/traces, which
# accepts and drops them; docs/tracing.md). Loopback only; about 60 s; everything it starts is
# stopped on exit. Last line: `SUMMARY proxy key=value ...` (bench/summarize.py).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "${1:-/work/main/build}" && pwd)"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-1 64}"
SAMPLES="${SAMPLES:-200}"
BENCH_NAME="proxy/run.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"

SWARMHOST="$BUILD/host/swarmhost"
for f in "$SWARMHOST" "$BUILD/plugins/swh_provider_openai.so" "$BUILD/plugins/swh_storage_sqlite.so"; do
  [[ -e "$f" ]] || { echo "$BENCH_NAME: missing $f" >&2; exit 2; }
done
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool not installed" >&2; exit 2; }
done

bench_init proxy
echo "# proxy: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# build: $BUILD ($(grep -m1 '^CMAKE_BUILD_TYPE' "$BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2)," \
     "swarmhost $(sha256sum "$SWARMHOST" | cut -c1-12) of $(date -u -r "$SWARMHOST" +%H:%M:%SZ))," \
     "wrk ${DURATION}s per run, $SAMPLES samples, temp dir $TMP"

# ------------------------------------------------------------------- nginx
start_fixed_nginx

# ------------------------------------------------------------------ daemon
PORT="$(free_port)"
write_proxy_daemon_config "$TMP/swarmhost.yaml" "$PORT" "$NGINX/v1"
cat >> "$TMP/swarmhost.yaml" <<EOF
  - name: upstream_stream
    plugin: openai
    config: { base_url: "$NGINX/stream/v1", api_key_env: "", retries: 0, timeout_ms: 10000 }
EOF
if [[ "${TRACING:-0}" == 1 ]]; then
  printf 'tracing: { otlp_endpoint: "%s", sample_ratio: 1.0 }\n' "$NGINX" >> "$TMP/swarmhost.yaml"
  echo "# tracing on: every request traced, spans to $NGINX/v1/traces"
fi
bench_spawn "$TMP/swarmhost.log" "$SWARMHOST" serve -c "$TMP/swarmhost.yaml" --log-level warn
DAEMON_PID=$SPAWNED_PID
DAEMON="http://127.0.0.1:$PORT"
wait_http "$DAEMON/healthz" "$DAEMON_PID" swarmhost "$TMP/swarmhost.log"

# Both paths answer what they should before anything is timed.
BODY='{"model":"up","messages":[{"role":"user","content":"hello world"}]}'
printf '%s' "$BODY" > "$TMP/body.json"
for url in "$DAEMON/v1/chat/completions" "$NGINX/v1/chat/completions" "$NGINX_PROXY/v1/chat/completions"; do
  curl -sf -H 'Content-Type: application/json' --data-binary @"$TMP/body.json" "$url" |
    grep -q 'fixed reply from the nginx stand-in' || bench_die "no expected reply from $url"
done

# ------------------------------------------------------------- 1. wrk
# Direct and daemon runs alternate, so a burst of background load hits both.
WRK_KEYS=()
for c in $CONNECTIONS; do
  t=$(( c < THREADS ? c : THREADS ))
  for target in direct proxy daemon; do
    case $target in
      direct) url="$NGINX/v1/chat/completions" ;;
      proxy) url="$NGINX_PROXY/v1/chat/completions" ;;
      daemon) url="$DAEMON/v1/chat/completions" ;;
    esac
    perf_pid=""
    if [[ -n "${PERF_OUT:-}" && $target == daemon && $c == "${CONNECTIONS##* }" ]]; then
      perf record -q ${PERF_CALLGRAPH:---call-graph dwarf,16384} -F 999 -p "$DAEMON_PID" -o "$PERF_OUT" -- sleep "$DURATION" >/dev/null 2>&1 &
      perf_pid=$!
    fi
    res="$(run_wrk "$target-c$c" "$t" "$c" "$HERE/post_chat.lua" "$url" up)"
    [[ -z "$perf_pid" ]] || wait "$perf_pid" || true
    printf -v "WRK_${target}_c$c" '%s threads=%s conns=%s' "$res" "$t" "$c"
    WRK_KEYS+=("WRK_${target}_c$c")
  done
done

# ------------------------------------------- 2. X-Swarmhost-Overhead-Ms
# One curl process, $SAMPLES transfers to the daemon and $SAMPLES straight to
# nginx, alternating, each host on its own kept-alive connection: the same
# client measures both (curl's time_total), so the median daemon time less
# the median direct time is the overhead a client sees, set against the
# header of those same daemon replies (target 7: within 25%). -D - dumps
# every reply's headers (bodies go to /dev/null).
{ for _ in $(seq "$SAMPLES"); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$DAEMON/v1/chat/completions" "$NGINX/v1/chat/completions"
  done; } > "$TMP/curl-overhead.cfg"
curl -s -D "$TMP/overhead-headers.txt" -w 'TIME %{url_effective} %{time_total}\n' -H 'Content-Type: application/json' \
  --data-binary @"$TMP/body.json" -K "$TMP/curl-overhead.cfg" > "$TMP/overhead-times.txt"
OVERHEAD="$(python3 - "$TMP/overhead-headers.txt" "$TMP/overhead-times.txt" "$SAMPLES" "$DAEMON" <<'PY'
import statistics, sys
headers, times, samples, daemon = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
status, vals = [], []
for line in open(headers, encoding="latin-1"):
    if line.startswith("HTTP/"):
        status.append(line.split()[1])
    elif line.lower().startswith("x-swarmhost-overhead-ms:"):
        vals.append(float(line.split(":", 1)[1]))
if not vals:
    sys.exit("no X-Swarmhost-Overhead-Ms header in the replies")
through, direct = [], []
for line in open(times):
    if line.startswith("TIME "):
        _, url, seconds = line.split()
        (through if url.startswith(daemon) else direct).append(float(seconds) * 1000)
client_added = statistics.median(through) - statistics.median(direct)
vals.sort()
p = lambda q: vals[min(len(vals) - 1, round(q * (len(vals) - 1)))]
print(f"n={len(vals)} non200={sum(s != '200' for s in status) + 2 * samples - len(status)} "
      f"p50={statistics.median(vals):.3f} p90={p(0.9):.3f} p99={p(0.99):.3f} max={vals[-1]:.3f} "
      f"client_added_p50={client_added:.3f} accuracy={statistics.median(vals) / client_added:.2f}")
PY
)"

# ---------------------------------------------------- 3. streaming TTFB
TTFB="$(python3 "$HERE/ttfb.py" "$DAEMON/v1/chat/completions" "$NGINX/stream/v1/chat/completions" \
  upstream_stream "$SAMPLES" 10)"
TTFB="${TTFB#TTFB }"

if [[ "${TRACING:-0}" == 1 ]]; then
  curl -sf "$DAEMON/metrics" | grep -E '^swarmhost_trace_' | sed 's/^/# /'
fi
bench_stop "$DAEMON_PID"
bench_stop "$NGINX_PID"
DAEMON_WARNINGS="$(grep -ciE '(warn|error|critical)' "$TMP/swarmhost.log" || true)"
NGINX_ERRORS="$(grep -ciE '\[(error|crit|alert|emerg)\]' "$TMP/nginx/error.log" || true)"

# ------------------------------------------------------------------ report
export CONNECTIONS OVERHEAD TTFB DAEMON_WARNINGS NGINX_ERRORS DURATION "${WRK_KEYS[@]}"
python3 - <<'PY'
import os
e = os.environ
kv = lambda s: {k: v for k, v in (p.split("=", 1) for p in s.split())}
conns = e["CONNECTIONS"].split()
out = []
print()
print(f"{'POST /v1/chat/completions (wrk ' + e['DURATION'] + 's)':40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
      f"{'requests':>9} {'non-2xx':>8} {'sock err':>8}")
for c in conns:
    for target in ("direct", "proxy", "daemon"):
        v = kv(e[f"WRK_{target}_c{c}"])
        err = sum(int(v[k]) for k in ("connect_err", "read_err", "write_err", "timeouts"))
        label = {"direct": "nginx directly", "proxy": "nginx proxy -> nginx", "daemon": "daemon -> nginx"}[target]
        name = label + f", {c} conn, {v['threads']} thr"
        print(f"{name:40} {float(v['rps']):9.0f} {int(v['p50_us'])/1000:8.3f} {int(v['p99_us'])/1000:8.3f} "
              f"{v['requests']:>9} {v['non2xx']:>8} {err:8d}")
        out += [f"{target}_c{c}_rps={float(v['rps']):.1f}", f"{target}_c{c}_p50_us={v['p50_us']}",
                f"{target}_c{c}_p99_us={v['p99_us']}", f"{target}_c{c}_non2xx={v['non2xx']}",
                f"{target}_c{c}_sockerr={err}"]
print()
for c in conns:
    d, n, x = kv(e[f"WRK_daemon_c{c}"]), kv(e[f"WRK_direct_c{c}"]), kv(e[f"WRK_proxy_c{c}"])
    ratio = float(d["rps"]) / float(n["rps"])
    vs_proxy = float(d["rps"]) / float(x["rps"])
    added = (int(d["p50_us"]) - int(n["p50_us"])) / 1000
    added99 = (int(d["p99_us"]) - int(n["p99_us"])) / 1000
    proxy_added = (int(x["p50_us"]) - int(n["p50_us"])) / 1000
    print(f"{c} conn: daemon/direct req/s = {ratio:.4f}, daemon/nginx-proxy = {vs_proxy:.4f}; added latency "
          f"p50 {added:+.3f} ms (nginx proxy {proxy_added:+.3f}), p99 {added99:+.3f} ms")
    out += [f"ratio_c{c}={ratio:.4f}", f"ratio_vs_proxy_c{c}={vs_proxy:.4f}", f"added_p50_ms_c{c}={added:.3f}",
            f"proxy_added_p50_ms_c{c}={proxy_added:.3f}", f"added_p99_ms_c{c}={added99:.3f}"]
o = kv(e["OVERHEAD"])
print(f"X-Swarmhost-Overhead-Ms over {o['n']} sequential requests: p50 {o['p50']} ms, p90 {o['p90']}, "
      f"p99 {o['p99']}, max {o['max']} (non-200: {o['non200']}); the same client measured "
      f"+{o['client_added_p50']} ms over direct (header/measured {o['accuracy']}; target 7: 0.75-1.25)")
out += [f"overhead_hdr_{k}={v}" for k, v in o.items() if k != "n"]
t = kv(e["TTFB"])
print()
print(f"streamed, {t['n']} sequential requests each, new connection per request (ms)")
print(f"  {'':22} {'first data line':>17} {'first token':>17} {'[DONE]':>17}")
for name in ("daemon", "direct"):
    cells = " ".join(f"{float(t[f'{name}_{k}_p50']):8.3f}/{float(t[f'{name}_{k}_p90']):<8.3f}"
                     for k in ("first_line", "first_token", "done"))
    print(f"  {name + ' p50/p90':22} {cells}   failures {t[f'{name}_failures']}")
print(f"  first token through the daemon - direct (median of paired differences): {float(t['diff_first_token_p50']):+.3f} ms;"
      f" [DONE]: {float(t['diff_done_p50']):+.3f} ms; daemon's gateway_overhead_ms p50 {t.get('daemon_gateway_overhead_p50', '-')}")
out += [f"ttfb_{k}={v}" for k, v in t.items() if k != "n"]
# The streamed figure covers the whole stream: it is set against [DONE]'s difference (target 7).
if "daemon_gateway_overhead_p50" in t and float(t["diff_done_p50"]) > 0:
    streamed = float(t["daemon_gateway_overhead_p50"]) / float(t["diff_done_p50"])
    print(f"  streamed figure/measured ([DONE]) {streamed:.2f} (target 7: 0.75-1.25)")
    out.append(f"streamed_overhead_accuracy={streamed:.2f}")
print()
print(f"log lines: daemon warn/error {e['DAEMON_WARNINGS']}, nginx error {e['NGINX_ERRORS']}")
out += [f"daemon_log_warnings={e['DAEMON_WARNINGS']}", f"nginx_log_errors={e['NGINX_ERRORS']}"]
print("SUMMARY proxy " + " ".join(out))
PY
