#!/usr/bin/env bash
# bench/http_send/length_sweep.sh BUILD_DIR [BUILD_DIR...] — is a send's cost
# flat in the session's length (issue 17, target 3)? For each build, sessions
# pre-filled to each of $LENGTHS messages (rows written straight into the
# daemon's SQLite file with the sqlite3 CLI, as the plugin stores them), then
# the same wrk POST load as bench/http_send/run.sh. Rounds alternate builds
# and lengths so drift in machine load hits all alike; prints the median
# sends/s per build and length and the ratio longest/shortest.
# Environment: LENGTHS (default "10 5000"), ROUNDS (3), DURATION (wrk s, 8),
# SESSIONS (16), CONNS (16), SYNC (SQLite synchronous, "full"), WINDOW
# (sessions' config max_history_messages; default: none, the daemon's
# default). Needs host/swarmhost and the plugins configs/default.yaml loads
# in each BUILD_DIR, and sqlite3, wrk, curl, python3. Loopback only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
[[ $# -ge 1 ]] || { echo "usage: $0 BUILD_DIR [BUILD_DIR...]" >&2; exit 2; }
BUILDS=()
for b in "$@"; do BUILDS+=("$(cd "$b" && pwd)"); done
LENGTHS="${LENGTHS:-10 5000}"
ROUNDS="${ROUNDS:-3}"
export DURATION="${DURATION:-8}"
SESSIONS="${SESSIONS:-16}"
CONNS="${CONNS:-16}"
SYNC="${SYNC:-full}"
WINDOW="${WINDOW:-}"

BENCH_NAME="http_send/length_sweep.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"
for tool in sqlite3 wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool not installed" >&2; exit 2; }
done
for b in "${BUILDS[@]}"; do
  [[ -x "$b/host/swarmhost" ]] || { echo "$BENCH_NAME: missing $b/host/swarmhost" >&2; exit 2; }
done

bench_init sweep
DAEMON_PID=""
echo "# length_sweep: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# lengths: $LENGTHS; $ROUNDS rounds; wrk ${DURATION}s, $CONNS conns, $SESSIONS sessions; synchronous=$SYNC; window: ${WINDOW:-default}"

# One run: a fresh database with $SESSIONS sessions of LENGTH messages, then
# the POST load. Prints sends/s.
run_one() { # BUILD LENGTH TAG
  local build="$1" length="$2" tag="$3" port db config
  port="$(free_port)"
  db="$TMP/$tag.db"
  sed -e "s|^plugin_dirs:.*|plugin_dirs: [ \"$build/plugins\" ]|" \
      -e "s|^\( *\)path:.*|\1path: \"$db\"\n\1synchronous: \"$SYNC\"|" \
      -e "s|^\( *\)listen:.*|\1listen: \"127.0.0.1:$port\"|" \
      "$REPO/configs/default.yaml" > "$TMP/$tag.yaml"
  bench_spawn "$TMP/$tag.log" "$build/host/swarmhost" serve -c "$TMP/$tag.yaml" --listen "127.0.0.1:$port" --log-level warn
  DAEMON_PID=$SPAWNED_PID
  wait_http "http://127.0.0.1:$port/healthz" "$DAEMON_PID" swarmhost "$TMP/$tag.log"
  config='{}'
  [[ -n "$WINDOW" ]] && config="{\"max_history_messages\": $WINDOW}"
  for _ in $(seq "$SESSIONS"); do
    curl -sf -H 'Content-Type: application/json' -d "{\"user_id\":\"sweep\",\"config\":$config}" \
      "http://127.0.0.1:$port/v1/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
  done > "$TMP/$tag.ids"
  # Rows as the plugin writes them: a user message, then an echo reply with
  # the metadata a send stores; timestamps in the past, the count and last
  # activity to match (add_message's atomic step).
  sqlite3 "$db" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $length)
INSERT INTO messages (id, session_id, role, content, timestamp, metadata, provider_metadata, structured)
SELECT s.id || '-' || n.i, s.id,
       CASE n.i % 2 WHEN 1 THEN 'user' ELSE 'assistant' END,
       CASE n.i % 2 WHEN 1 THEN 'hello world ' || n.i ELSE 'echo#' || n.i || ' hello world' END,
       s.created_at - 10000000 + n.i,
       CASE n.i % 2 WHEN 1 THEN '{}'
            ELSE '{"provider":"echo","reply_to":"' || s.id || '-' || (n.i - 1) || '","response_time_ms":0.2,"streaming":false}' END,
       CASE n.i % 2 WHEN 1 THEN '{}'
            ELSE '{"finish_reason":"stop","model":"echo-1","usage":{"completion_tokens":3,"prompt_tokens":20}}' END,
       ''
FROM sessions s, n;
UPDATE sessions SET message_count = $length, last_activity = created_at - 10000000 + $length;
COMMIT;
SQL
  local result
  result="$(run_wrk "$tag" 2 "$CONNS" "$HERE/post_messages.lua" "http://127.0.0.1:$port" "$TMP/$tag.ids")"
  bench_stop "$DAEMON_PID"; DAEMON_PID=""
  [[ "$(field non2xx "$result")" == 0 ]] || bench_die "$tag: non-2xx answers: $result"
  rm -f "$db" "$db-wal" "$db-shm"
  field rps "$result"
}

for round in $(seq "$ROUNDS"); do
  for i in "${!BUILDS[@]}"; do
    for length in $LENGTHS; do
      rps="$(run_one "${BUILDS[$i]}" "$length" "b$i-l$length-r$round")"
      echo "round $round build $i length $length sends/s $rps"
      echo "b$i $length $rps" >> "$TMP/results"
    done
  done
done

python3 - "$TMP/results" "$LENGTHS" "${BUILDS[@]}" <<'PY'
import statistics, sys
path, lengths, builds = sys.argv[1], [int(x) for x in sys.argv[2].split()], sys.argv[3:]
runs = {}
for line in open(path):
    b, length, rps = line.split()
    runs.setdefault((b, int(length)), []).append(float(rps))
print()
print(f"{'build':50} " + " ".join(f"{'len ' + str(n):>12}" for n in lengths) + f" {'ratio':>8}")
out = []
for i, build in enumerate(builds):
    med = [statistics.median(runs[(f"b{i}", n)]) for n in lengths]
    ratio = med[-1] / med[0]
    print(f"{build[-50:]:50} " + " ".join(f"{m:12.0f}" for m in med) + f" {ratio:8.3f}")
    out += [f"b{i}_len{n}_rps={m:.1f}" for n, m in zip(lengths, med)] + [f"b{i}_ratio={ratio:.4f}"]
print("(sends/s, median of the rounds; ratio = longest / shortest)")
print("SUMMARY sweep " + " ".join(out))
PY
