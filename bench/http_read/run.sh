#!/usr/bin/env bash
# bench/http_read/run.sh [BUILD_DIR] — reading a conversation back (issue 17
# target 4): GET /v1/sessions/{id}/messages?limit=50 against nginx serving a
# file of the same size (one of the daemon's own answers, saved), in one run.
#   daemon  SQLite storage (synchronous=full), echo provider; $SESSIONS
#           sessions of $SENDS sends each (2 messages per send), so a read
#           returns 50 messages
#   nginx   GET of that saved answer (static file, keep-alive)
# For each: req/s, p50/p99 at $CONNS connections and at 1, and the server's
# CPU time per request (utime+stime from /proc over the run). Prints the
# ratios daemon/nginx. Builds nothing: BUILD_DIR (default /work/main/build)
# must hold host/swarmhost and plugins/*.so.
# Environment: DURATION (wrk seconds, default 5), ROUNDS (default 2),
# SESSIONS (default 64), SENDS (default 30), CONNS (default 16),
# PERF_OUT (a path: also record a perf profile of the daemon's 16-connection
# run there). Loopback only; everything it starts is stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="$(cd "${1:-/work/main/build}" && pwd)"
DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-2}"
SESSIONS="${SESSIONS:-64}"
SENDS="${SENDS:-30}"
CONNS="${CONNS:-16}"

BENCH_NAME="http_read/run.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"

SWARMHOST="$BUILD/host/swarmhost"
for f in "$SWARMHOST" "$BUILD/plugins/swh_storage_sqlite.so" "$BUILD/plugins/swh_provider_echo.so"; do
  [[ -e "$f" ]] || bench_die "missing $f (build it: cmake --build $BUILD)"
done
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || bench_die "$tool not installed"
done

bench_init read
echo "# http_read: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# build: $BUILD, $ROUNDS rounds of wrk ${DURATION}s, $SESSIONS sessions x $SENDS sends, $CONNS connections"

# ------------------------------------------------------------------ daemon
PORT="$(free_port)"
sed -e "s|^plugin_dirs:.*|plugin_dirs: [ \"$BUILD/plugins\" ]|" \
    -e "s|^\( *\)path:.*|\1path: \"$TMP/read.db\"\n\1synchronous: \"full\"|" \
    -e "s|^\( *\)listen:.*|\1listen: \"127.0.0.1:$PORT\"|" \
    "$REPO/configs/default.yaml" > "$TMP/read.yaml"
grep -q "$TMP/read.db" "$TMP/read.yaml" || bench_die "could not rewrite the manifest"
bench_spawn "$TMP/daemon.log" "$SWARMHOST" serve -c "$TMP/read.yaml" --log-level warn
DAEMON_PID=$SPAWNED_PID
BASE="http://127.0.0.1:$PORT"
wait_http "$BASE/healthz" "$DAEMON_PID" swarmhost "$TMP/daemon.log"

# Sessions filled through the API (several at a time: synchronous=full),
# then one answer saved for nginx.
PYTHONPATH="$REPO/bench" python3 - "$BASE" "$SESSIONS" "$SENDS" "$TMP/sessions.txt" "$TMP/answer.json" <<'PY'
import concurrent.futures, json, sys
from api_client import call, connect
base, n, sends, ids_file, answer_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def fill(i):
    c = connect(base)
    sid = json.loads(call(c, "POST", "/v1/sessions", {"user_id": "bench"}))["id"]
    for k in range(sends):
        call(c, "POST", f"/v1/sessions/{sid}/messages",
             {"content": f"message {k} of session {i}: the quick brown fox jumps over the lazy dog",
              "metadata": {"client": "bench", "n": k}})
    return sid
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    ids = list(pool.map(fill, range(n)))
open(ids_file, "w").write("\n".join(ids) + "\n")
c = connect(base)
answer = call(c, "GET", f"/v1/sessions/{ids[0]}/messages?limit=50")
got = len(json.loads(answer)["messages"])
if got != min(50, 2 * sends):
    sys.exit(f"GET returned {got} messages, expected {min(50, 2 * sends)}")
open(answer_file, "wb").write(answer)
print(f"# answer: {len(answer)} bytes, {got} messages")
PY

# ------------------------------------------------------------------- nginx
start_static_nginx "$TMP/answer.json"

# CPU ticks of a process and its children (nginx: master + workers).
ticks() { # PID
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}
measure() { # TARGET CONNS ROUND -> one RESULT line on $TMP/results
  local target="$1" conns="$2" round="$3" pid before after line threads=2 perf_pid=""
  [[ "$conns" -eq 1 ]] && threads=1
  if [[ "$target" == daemon ]]; then pid=$DAEMON_PID; else pid=$NGINX_PID; fi
  before="$(ticks "$pid")"
  if [[ "$target" == daemon ]]; then
    if [[ -n "${PERF_OUT:-}" && "$conns" -eq "$CONNS" && "$round" -eq 1 ]]; then
      perf record -q -g -F 999 -p "$DAEMON_PID" -o "$PERF_OUT" -- sleep "$DURATION" >/dev/null 2>&1 &
      perf_pid=$!
    fi
    line="$(run_wrk "daemon-$conns-$round" "$threads" "$conns" "$REPO/bench/http_send/get_messages.lua" "$BASE" "$TMP/sessions.txt")"
    [[ -z "$perf_pid" ]] || wait "$perf_pid" || true
  else
    line="$(run_wrk "nginx-$conns-$round" "$threads" "$conns" "$REPO/bench/http_send/get_fixed.lua" "$STATIC_URL")"
  fi
  after="$(ticks "$pid")"
  echo "$target $conns ticks=$(( after - before )) $line" >> "$TMP/results"
}
for round in $(seq "$ROUNDS"); do
  for conns in "$CONNS" 1; do
    measure nginx "$conns" "$round"
    measure daemon "$conns" "$round"
  done
done

python3 - "$TMP/results" "$(getconf CLK_TCK)" "$CONNS" <<'PY'
import statistics, sys
rows, hz, conns = {}, int(sys.argv[2]), int(sys.argv[3])
for line in open(sys.argv[1]):
    target, c, *kv = line.split()
    v = dict(p.split("=", 1) for p in kv)
    rows.setdefault((target, int(c)), []).append(v)
print(f"\n{'GET, 50 messages':24} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'non-2xx':>8}")
stats = {}
for (t, c), rs in sorted(rows.items()):
    rps = statistics.mean(float(r["rps"]) for r in rs)
    p50 = statistics.mean(int(r["p50_us"]) for r in rs) / 1000
    p99 = statistics.mean(int(r["p99_us"]) for r in rs) / 1000
    cpu = statistics.mean(int(r["ticks"]) / hz * 1e6 / max(1, int(r["requests"])) for r in rs)
    bad = sum(int(r["non2xx"]) for r in rs)
    stats[(t, c)] = (rps, p50, cpu)
    print(f"{t:24} {c:>5} {rps:9.0f} {p50:8.3f} {p99:8.3f} {cpu:10.1f} {bad:>8}")
print()
for c in (conns, 1):
    d, n = stats[("daemon", c)], stats[("nginx", c)]
    print(f"daemon/nginx req/s at {c:>2} conns: {d[0] / n[0]:.3f}   (target 4: >= 0.3)   "
          f"CPU per request {d[2]:.1f} us vs {n[2]:.1f} us")
print(f"RESULT get_rps_ratio_c{conns}={stats[('daemon', conns)][0] / stats[('nginx', conns)][0]:.4f} "
      f"get_rps_ratio_c1={stats[('daemon', 1)][0] / stats[('nginx', 1)][0]:.4f} "
      f"daemon_cpu_us_c{conns}={stats[('daemon', conns)][2]:.1f}")
PY
