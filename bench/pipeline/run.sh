#!/usr/bin/env bash
# bench/pipeline/run.sh [BUILD_DIR] — send-path throughput with the three
# middleware (content_filter, personalization, analytics) and the three hooks
# (metrics, backup, user_behavior) on, against the same daemon with all of
# them off. Same wrk script (post_pipeline.lua), same sessions, same manifest
# otherwise (SQLite storage, echo provider). Prints both results and the
# on/off ratio, plus the hooks' delivered/dropped counts from /metrics, and
# the daemon's CPU (user + system, from /proc) per request of each measured
# run with its ratio (CPU-RATIO, base over mode), which a machine shared with
# other work disturbs less than requests per second.
# Builds nothing: BUILD_DIR (default /work/main/build) must hold
# host/swarmhost and plugins/*.so.
# Environment: DURATION (wrk seconds, default 10), CONNECTIONS (default 16),
# SESSIONS (default 64), MODES (default "off on"; also "mw" = the three
# middleware only, "hooks" = the three hooks only; the first mode is the
# baseline of the ratios), PERF_OUT (if set: `perf record -g` of the daemon
# during each measured run, written to PERF_OUT.MODE; read it with
# `perf report -i FILE --no-children`; PERF_ARGS replaces `-g`, e.g.
# "--call-graph dwarf -F 499" for call chains through code built without frame
# pointers). Loopback only; everything it starts is
# stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "${1:-/work/main/build}" && pwd)"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
SESSIONS="${SESSIONS:-64}"

SWARMHOST="$BUILD/host/swarmhost"
for p in storage_sqlite provider_echo middleware_content_filter middleware_personalization middleware_analytics \
         hook_metrics hook_backup hook_user_behavior; do
  [[ -e "$BUILD/plugins/swh_$p.so" ]] || { echo "run.sh: missing $BUILD/plugins/swh_$p.so" >&2; exit 2; }
done
[[ -x "$SWARMHOST" ]] || { echo "run.sh: missing $SWARMHOST" >&2; exit 2; }
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not installed" >&2; exit 2; }
done

TMP="$(mktemp -d /tmp/swh-bench-pipeline.XXXXXX)"
DAEMON_PID=""
stop_daemon() {
  if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  DAEMON_PID=""
}
cleanup() { stop_daemon; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# cpu_ticks PID -> utime + stime of the process, in clock ticks
cpu_ticks() {
  python3 -c 'import sys; f = open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")", 1)[1].split(); print(int(f[11]) + int(f[12]))' "$1"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# manifest MODE PORT DIR -> prints the manifest (MODE: off | on | mw | hooks)
manifest() {
  local mode=$1 port=$2 dir=$3
  cat <<YAML
server:
  listen: "127.0.0.1:$port"
plugin_dirs: ["$BUILD/plugins"]
storage:
  plugin: sqlite
  config: { path: "$dir/swarmhost.db" }
providers:
  - { name: echo, plugin: echo }
YAML
  if [[ "$mode" == on || "$mode" == mw ]]; then
  cat <<YAML
middleware:
  - name: content_filter
    plugin: content_filter
    priority: 100
    when: { user_type: free }
    config: { blocked_words: [spam, "foo bar"], regexes: ['\\b\\d{3}-\\d{4}\\b'], case_insensitive: true,
              stages: [user, assistant] }
  - name: personalization
    plugin: personalization
    priority: 50
    after: [content_filter]
    config: { styles: { formal: { prefix: "Dear user, ", suffix: " Kind regards." } } }
  - { name: analytics, plugin: analytics, priority: 10, config: { output_file: "$dir/analytics.jsonl" } }
YAML
  fi
  if [[ "$mode" == on || "$mode" == hooks ]]; then
  cat <<YAML
hooks:
  - { name: metrics, plugin: metrics }
  - { name: backup, plugin: backup, config: { dir: "$dir/backups", triggers: [archived, every_10_messages] } }
  - { name: user_behavior, plugin: user_behavior, config: { output_file: "$dir/user_behavior.jsonl" } }
YAML
  fi
}

# run MODE -> prints "MODE RESULT ..." and, when on, the hook counters
run() {
  local mode=$1 dir="$TMP/$1" port
  mkdir -p "$dir"
  port="$(free_port)"
  manifest "$mode" "$port" "$dir" > "$dir/manifest.yaml"
  "$SWARMHOST" serve -c "$dir/manifest.yaml" > "$dir/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "run.sh: daemon exited; log:" >&2; cat "$dir/daemon.log" >&2; exit 1; }
    sleep 0.1
  done
  local body='{"user_id":"bench","context":{"user_context":{"type":"free","profile":{"communication_style":"formal","experience_level":"expert"}}}}'
  : > "$dir/sessions.txt"
  for i in $(seq "$SESSIONS"); do
    curl -sf -H 'Content-Type: application/json' -d "${body/bench/bench$((i % 8))}" \
      "http://127.0.0.1:$port/v1/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' \
      >> "$dir/sessions.txt"
  done
  # warm-up, then the measured run
  wrk -t2 -c"$CONNECTIONS" -d2s -s "$HERE/post_pipeline.lua" "http://127.0.0.1:$port" -- "$dir/sessions.txt" > /dev/null
  local result perf_pid=""
  if [[ -n "${PERF_OUT:-}" ]]; then
    perf record -q ${PERF_ARGS:--g} -p "$DAEMON_PID" -o "$PERF_OUT.$mode" -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local cpu_before cpu_after
  cpu_before="$(cpu_ticks "$DAEMON_PID")"
  result="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$HERE/post_pipeline.lua" "http://127.0.0.1:$port" \
            -- "$dir/sessions.txt" | grep '^RESULT')"
  cpu_after="$(cpu_ticks "$DAEMON_PID")"
  [[ -z "$perf_pid" ]] || wait "$perf_pid" || true
  # Daemon CPU (user + system, its hook workers included) per request during
  # the measured run: what a busy shared machine disturbs least.
  local requests
  requests="$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$result")"
  echo "$mode $result cpu_ms_per_req=$(python3 -c "import os,sys; t=os.sysconf('SC_CLK_TCK'); \
print('%.3f' % ((int(sys.argv[2]) - int(sys.argv[1])) * 1000.0 / t / max(1, int(sys.argv[3]))))" \
    "$cpu_before" "$cpu_after" "$requests")"
  if [[ "$mode" == on || "$mode" == hooks ]]; then
    curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^swarmhost_(hook_(events_(delivered|dropped|failed)_total|queue_length)|backup_(reads|superseded|deferred)_total)' \
      | sed 's/^/  on-metrics /'
  fi
  stop_daemon
}

MODES="${MODES:-off on}"
RESULTS=()
for mode in $MODES; do RESULTS+=("$(run "$mode")"); done
printf '%s\n' "${RESULTS[@]}"
python3 - "${RESULTS[@]}" <<'PY'
import re, sys
runs = [(r.split()[0], float(re.search(r"rps=([\d.]+)", r).group(1)),
         float(re.search(r"cpu_ms_per_req=([\d.]+)", r).group(1))) for r in sys.argv[1:]]
base_mode, base, base_cpu = runs[0]
for mode, rps, cpu in runs[1:]:
    print("RATIO %s/%s = %.3f  (%s %.1f req/s, %s %.1f req/s)" % (mode, base_mode, rps / base, base_mode, base, mode, rps))
    # The throughput ratio a machine with the daemon's CPU to itself would
    # show if the daemon is CPU-bound: CPU per request, base over this mode.
    print("CPU-RATIO %s/%s = %.3f  (%s %.3f ms/req, %s %.3f ms/req)" % (mode, base_mode, base_cpu / cpu, base_mode,
                                                                     base_cpu, mode, cpu))
PY
