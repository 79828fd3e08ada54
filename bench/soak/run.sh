#!/usr/bin/env bash
# Soak: 30 minutes (SOAK_SECONDS) of mixed load against one daemon (sends,
# streams, client disconnects mid-stream and mid-listen, session-type routes,
# uploads, the OpenAI door, a reload every 30 s), sampling the daemon's RSS,
# open file descriptors and threads every 10 s (SAMPLE_SECONDS). Prints the
# least squares slope per hour of each series after the warm-up (the first
# fifth) and the request/error counts; keeps the samples as CSV in
# $SOAK_OUT (default ./soak-samples.csv). Not part of the test suite.
#
#   bench/soak/run.sh [BUILD_DIR]          # default ./build
#   SOAK_SECONDS=120 bench/soak/run.sh     # a short run
#   PACE_MS=5 bench/soak/run.sh            # each worker pauses 5 ms between requests
#   HISTORY_CACHE_MB=1 bench/soak/run.sh   # server.history_cache_mb (default: the daemon's)
#   SESSION_MESSAGES=0 bench/soak/run.sh   # never replace the long-lived sessions (default 2000)
#
# The daemon runs with SQLite (synchronous: full), the echo provider, the
# three session types, the three middleware and the three hooks of the
# guide, so every part sees the load.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
. "$here/../lib.sh"
bench_init soak

port="$(free_port)"
mkdir -p "$TMP/backups" "$TMP/attachments"
cat > "$TMP/manifest.yaml" <<YAML
server:
  listen: "127.0.0.1:$port"
${HISTORY_CACHE_MB:+  history_cache_mb: $HISTORY_CACHE_MB}
plugin_dirs: [ "$build/plugins" ]
storage:
  plugin: sqlite
  config: { path: "$TMP/soak.db" }
providers:
  - name: echo
    plugin: echo
middleware:
  - plugin: content_filter
  - plugin: personalization
  - plugin: analytics
hooks:
  - plugin: metrics
  - plugin: user_behavior
    config: { output_file: "$TMP/flags.jsonl" }
  - name: backup
    plugin: backup
    config: { dir: "$TMP/backups", triggers: [every_10_messages] }
session_types:
  - plugin: templated
    config: { templates_dir: "$root/configs/templates" }
  - plugin: collaborative
  - plugin: multimodal
    config: { attachments_dir: "$TMP/attachments" }
YAML
"$build/host/swarmhost" check -c "$TMP/manifest.yaml" > "$TMP/check.log" 2>&1 \
  || { cat "$TMP/check.log" >&2; bench_die "manifest refused"; }
bench_spawn "$TMP/daemon.log" "$build/host/swarmhost" serve -c "$TMP/manifest.yaml"
daemon=$SPAWNED_PID
wait_http "http://127.0.0.1:$port/healthz" "$daemon" daemon "$TMP/daemon.log"

echo "soak: daemon pid $daemon on port $port, ${SOAK_SECONDS:-1800} s, sampling every ${SAMPLE_SECONDS:-10} s"
status=0
python3 "$here/soak.py" --port "$port" --pid "$daemon" --seconds "${SOAK_SECONDS:-1800}" \
  --sample-seconds "${SAMPLE_SECONDS:-10}" --pace-ms "${PACE_MS:-0}" --session-messages "${SESSION_MESSAGES:-2000}" --samples "${SOAK_OUT:-$PWD/soak-samples.csv}" || status=$?
if ! kill -0 "$daemon" 2>/dev/null || [[ $status -ne 0 ]]; then
  cp "$TMP/daemon.log" "${SOAK_OUT:-$PWD/soak-samples.csv}.daemon.log"
  tail -30 "$TMP/daemon.log" >&2
  bench_die "the daemon died during the soak (log kept beside the samples)"
fi
echo "soak: daemon alive at the end; log lines with 'error': $(grep -ci 'error' "$TMP/daemon.log" || true)"
