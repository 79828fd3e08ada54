#!/usr/bin/env bash
# bench/http_send/run.sh [BUILD_DIR] — the send path end to end, with
# baselines measured in the same run:
#   daemon  POST /v1/sessions/{id}/messages  (SQLite storage, echo provider),
#           spread over $SESSIONS sessions; 16, 64 and 1 connections
#   daemon  GET  /v1/sessions/{id}/messages?limit=50
#   nginx   GET  of a fixed JSON file of the same size as a send response
#   sqlite_baseline: the same rows written with the sqlite3 C API, 1, 16 and
#           64 threads (no HTTP, no plugin, no group commit)
# Prints a table and ratios. Builds nothing: BUILD_DIR (default
# /work/main/build-bench) must hold host/swarmhost, plugins/*.so and
# bench/sqlite_baseline (`ninja -C BUILD_DIR bench_all`).
# Environment: DURATION (wrk seconds, default 10), SESSIONS (default 64),
# SQLITE_SECONDS (default 3), GROUP_COMMIT (true|false: the sqlite plugin's
# group_commit key; unset = the plugin's default, for builds that predate it). Loopback only. Everything it starts is stopped
# on exit (bench/lib.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="$(cd "${1:-/work/main/build-bench}" && pwd)"
DURATION="${DURATION:-10}"
SESSIONS="${SESSIONS:-64}"
SQLITE_SECONDS="${SQLITE_SECONDS:-3}"

BENCH_NAME="http_send/run.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"

SWARMHOST="$BUILD/host/swarmhost"
SQLITE_BASELINE="$BUILD/bench/sqlite_baseline"
for f in "$SWARMHOST" "$SQLITE_BASELINE" "$BUILD/plugins/swh_storage_sqlite.so" "$BUILD/plugins/swh_provider_echo.so"; do
  [[ -e "$f" ]] || { echo "$BENCH_NAME: missing $f (build it: ninja -C $BUILD bench_all)" >&2; exit 2; }
done
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool not installed" >&2; exit 2; }
done

bench_init http
DAEMON_PID=""
NGINX_PID=""

echo "# http_send: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# build: $BUILD, wrk ${DURATION}s per run, $SESSIONS sessions, group_commit ${GROUP_COMMIT:-default}, temp dir $TMP (filesystem: $(df -T "$TMP" | awk 'NR==2{print $2}'))"

# ------------------------------------------------------------ raw sqlite
sqlite_run() { # THREADS MODE
  "$SQLITE_BASELINE" --db "$TMP/raw.db" --threads "$1" --mode "$2" --seconds "$SQLITE_SECONDS" \
    --sessions "$SESSIONS" --sync full | sed -n 's/^RESULT //p'
}
# The disk's fsync latency drifts with whatever else the machine does, so the
# raw floor is measured right before and right after the daemon's POST runs
# (ratios use the mean).
RAW_1_BEFORE="$(sqlite_run 1 message)"
RAW_16_BEFORE="$(sqlite_run 16 message)"
RAW_64_BEFORE="$(sqlite_run 64 message)"

# ------------------------------------------------------------------ daemon
# start_daemon NAME SYNC: fresh database, manifest copied from
# configs/default.yaml with absolute plugin_dirs, a temp DB and a free port.
start_daemon() {
  local name="$1" sync="$2"
  PORT="$(free_port)"
  sed -e "s|^plugin_dirs:.*|plugin_dirs: [ \"$BUILD/plugins\" ]|" \
      -e "s|^\( *\)path:.*|\1path: \"$TMP/$name.db\"\n\1synchronous: \"$sync\"${GROUP_COMMIT:+\\n\\1group_commit: $GROUP_COMMIT}|" \
      -e "s|^\( *\)listen:.*|\1listen: \"127.0.0.1:$PORT\"|" \
      "$REPO/configs/default.yaml" > "$TMP/$name.yaml"
  grep -q "$TMP/$name.db" "$TMP/$name.yaml" || bench_die "could not rewrite the manifest"
  bench_spawn "$TMP/$name.log" "$SWARMHOST" serve -c "$TMP/$name.yaml" --listen "127.0.0.1:$PORT" --log-level warn
  DAEMON_PID=$SPAWNED_PID
  BASE="http://127.0.0.1:$PORT"
  wait_http "$BASE/healthz" "$DAEMON_PID" swarmhost "$TMP/$name.log"
  # Sessions up front (one user, so one list call finds them all afterwards),
  # and one message to learn the size of a send response.
  PYTHONPATH="$REPO/bench" python3 - "$BASE" "$SESSIONS" "$TMP/sessions-$name.txt" "$TMP/send_response.json" <<'PY'
import json, sys
from api_client import call, connect
base, n, ids_file, sample_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = connect(base, timeout=10)
ids = [json.loads(call(c, "POST", "/v1/sessions", {"user_id": "bench"}))["id"] for _ in range(n)]
open(ids_file, "w").write("\n".join(ids) + "\n")
open(sample_file, "wb").write(call(c, "POST", f"/v1/sessions/{ids[0]}/messages", {"content": "hello world"}))
PY
}
# stop_daemon NAME: waits for in-flight sends, checks that the stored message
# count matches the acknowledged sends, stops the daemon, counts log warnings.
# Sets CHECK_<NAME>.
stop_daemon() { # NAME ACKED_REQUESTS
  local name="$1" acked=$(( $2 + 1 )) stored warnings
  sleep 0.5 # sends in flight when wrk stopped finish
  stored="$(curl -sf "$BASE/v1/sessions?user_id=bench&limit=100000" |
    python3 -c 'import json,sys; print(sum(s["message_count"] for s in json.load(sys.stdin)["sessions"]))')"
  bench_stop "$DAEMON_PID"; DAEMON_PID=""
  warnings="$(grep -ciE ' (warning|error|critical) ' "$TMP/$name.log" || true)"
  printf -v "CHECK_${name//-/_}" 'acked=%d stored=%d warnings=%d' "$acked" "$stored" "$warnings"
}

start_daemon full full
POST_16="$(run_wrk daemon-post-c16 2 16 "$HERE/post_messages.lua" "$BASE" "$TMP/sessions-full.txt")"
POST_64="$(run_wrk daemon-post-c64 2 64 "$HERE/post_messages.lua" "$BASE" "$TMP/sessions-full.txt")"
POST_1="$(run_wrk daemon-post-c1 1 1 "$HERE/post_messages.lua" "$BASE" "$TMP/sessions-full.txt")"
# The raw floor again right after the POST runs (the daemon is idle meanwhile).
RAW_1_AFTER="$(sqlite_run 1 message)"
RAW_16_AFTER="$(sqlite_run 16 message)"
RAW_64_AFTER="$(sqlite_run 64 message)"
GET_16="$(run_wrk daemon-get-c16 2 16 "$HERE/get_messages.lua" "$BASE" "$TMP/sessions-full.txt")"
stop_daemon full $(( $(field requests "$POST_16") + $(field requests "$POST_64") + $(field requests "$POST_1") ))

# The same send path without an fsync per commit: how much of it is the disk.
start_daemon normal normal
POSTN_16="$(run_wrk daemon-normal-post-c16 2 16 "$HERE/post_messages.lua" "$BASE" "$TMP/sessions-normal.txt")"
stop_daemon normal "$(field requests "$POSTN_16")"

# ------------------------------------------------------------------- nginx
cp "$TMP/send_response.json" "$TMP/send.json"
start_static_nginx "$TMP/send.json"
NGINX_16="$(run_wrk nginx-c16 2 16 "$HERE/get_fixed.lua" "$STATIC_URL")"
NGINX_1="$(run_wrk nginx-c1 1 1 "$HERE/get_fixed.lua" "$STATIC_URL")"
bench_stop "$NGINX_PID"; NGINX_PID=""

# ------------------------------------------------------------ raw sqlite
RAWREQ_1="$(sqlite_run 1 request)"
RAWREQ_16="$(sqlite_run 16 request)"

# ------------------------------------------------------------------ report
export POST_16 POST_64 POST_1 GET_16 POSTN_16 NGINX_16 NGINX_1 RAW_1_BEFORE RAW_16_BEFORE RAW_1_AFTER RAW_16_AFTER RAW_64_BEFORE RAW_64_AFTER \
  RAWREQ_1 RAWREQ_16 CHECK_full CHECK_normal DURATION SQLITE_SECONDS
python3 - <<'PY'
import os
e = os.environ
kv = lambda s: {k: v for k, v in (p.split("=", 1) for p in s.split())}
http = [
    ("post16", "daemon POST messages, 16 conns", kv(e["POST_16"])),
    ("post64", "daemon POST messages, 64 conns", kv(e["POST_64"])),
    ("post1", "daemon POST messages, 1 conn", kv(e["POST_1"])),
    ("get16", "daemon GET messages?limit=50, 16 conns", kv(e["GET_16"])),
    ("postnormal16", "daemon POST, synchronous=normal, 16 conns", kv(e["POSTN_16"])),
    ("nginx16", "nginx GET fixed JSON, 16 conns", kv(e["NGINX_16"])),
    ("nginx1", "nginx GET fixed JSON, 1 conn", kv(e["NGINX_1"])),
]
raw = [
    ("raw1_before", "2 txn/request (as daemon), 1 thr, before", kv(e["RAW_1_BEFORE"])),
    ("raw16_before", "2 txn/request (as daemon), 16 thr, before", kv(e["RAW_16_BEFORE"])),
    ("raw1_after", "2 txn/request (as daemon), 1 thr, after", kv(e["RAW_1_AFTER"])),
    ("raw16_after", "2 txn/request (as daemon), 16 thr, after", kv(e["RAW_16_AFTER"])),
    ("raw64_before", "2 txn/request (as daemon), 64 thr, before", kv(e["RAW_64_BEFORE"])),
    ("raw64_after", "2 txn/request (as daemon), 64 thr, after", kv(e["RAW_64_AFTER"])),
    ("rawreq1", "1 txn/request, 1 thread", kv(e["RAWREQ_1"])),
    ("rawreq16", "1 txn/request, 16 threads", kv(e["RAWREQ_16"])),
]
print()
print(f"{'HTTP (wrk ' + e['DURATION'] + 's, loopback)':44} {'req/s':>9} {'msgs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'sock err':>8}")
for _, name, v in http:
    err = sum(int(v[k]) for k in ("connect_err", "read_err", "write_err", "timeouts"))
    msgs = f"{2 * float(v['rps']):8.0f}" if "POST" in name else f"{'':8}"
    print(f"{name:44} {float(v['rps']):9.0f} {msgs} {int(v['p50_us'])/1000:8.2f} {int(v['p99_us'])/1000:8.2f} "
          f"{v['non2xx']:>8} {err:8d}")
print()
print(f"{'raw SQLite (sync=FULL, WAL, ' + e['SQLITE_SECONDS'] + 's)':44} {'req/s':>9} {'msgs/s':>8} {'commit/s':>8} {'busy':>8}")
for _, name, v in raw:
    print(f"{name:44} {float(v['requests_per_s']):9.0f} {float(v['msgs_per_s']):8.0f} "
          f"{float(v['commits_per_s']):8.0f} {v['busy_retries']:>8}")
h = {k: float(v["rps"]) for k, _, v in http}
r = {k: float(v["msgs_per_s"]) for k, _, v in raw}
s1 = (r["raw1_before"] + r["raw1_after"]) / 2
s16 = (r["raw16_before"] + r["raw16_after"]) / 2
s64 = (r["raw64_before"] + r["raw64_after"]) / 2
ratios = [
    ("post16_nginx16", "daemon POST rps / nginx rps, 16 conns", h["post16"] / h["nginx16"]),
    ("post1_nginx1", "daemon POST rps / nginx rps, 1 conn", h["post1"] / h["nginx1"]),
    ("get16_nginx16", "daemon GET?limit=50 rps / nginx rps, 16 conns", h["get16"] / h["nginx16"]),
    ("msgs16_raw1", "daemon msgs/s, 16 conns / raw sqlite 1 thread", 2 * h["post16"] / s1),
    ("msgs16_raw16", "daemon msgs/s, 16 conns / raw sqlite 16 threads", 2 * h["post16"] / s16),
    ("msgs64_raw64", "daemon msgs/s, 64 conns / raw sqlite 64 threads", 2 * h["post64"] / s64),
    ("msgs1_raw1", "daemon msgs/s, 1 conn / raw sqlite 1 thread", 2 * h["post1"] / s1),
    ("full_normal16", "daemon POST rps, sync=full / sync=normal, 16 conns", h["post16"] / h["postnormal16"]),
]
print()
print("ratios (raw sqlite = mean of the before and after runs)")
for _, name, x in ratios:
    print(f"  {name:52} {x:9.4f}")
print()
for name in ("full", "normal"):
    c = kv(e["CHECK_" + name])
    ok = "OK" if int(c["stored"]) >= 2 * int(c["acked"]) else "MISMATCH"
    print(f"consistency (daemon sync={name}): {c['acked']} acknowledged sends -> expected >= {2 * int(c['acked'])} "
          f"stored messages, found {c['stored']} [{ok}]; warning/error lines in its log: {c['warnings']}")
out = []
for k, _, v in http:
    out += [f"{k}_rps={float(v['rps']):.1f}", f"{k}_p50_us={v['p50_us']}", f"{k}_p99_us={v['p99_us']}",
            f"{k}_non2xx={v['non2xx']}"]
out += [f"{k}_msgs={x:.1f}" for k, x in r.items()]
out += [f"ratio_{k}={x:.4f}" for k, _, x in ratios]
for name in ("full", "normal"):
    c = kv(e["CHECK_" + name])
    out += [f"{name}_{k}={v}" for k, v in c.items()]
print("SUMMARY http " + " ".join(out))
PY
