#!/usr/bin/env bash
# bench/http_send/cpu_per_send.sh BUILD [SECONDS] [CONNS] [PREFILL]: daemon CPU and context switches per send
# (utime+stime from /proc/PID/stat, voluntary+nonvoluntary switches over /proc/PID/task/*/status),
# SQLite synchronous=full, echo provider, 64 sessions, wrk POST load.
# PREFILL: sends per session before the measured run (sessions reach the 100-message window).
# PERF_OUT (if set): `perf record` of the daemon during the measured run, written there
# (PERF_ARGS replaces the default `-g -F 999`).
set -euo pipefail
BUILD="$(cd "$1" && pwd)"; SECS="${2:-8}"; CONNS="${3:-16}"; PREFILL="${4:-60}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"; cd "$REPO"
TMP="$(mktemp -d /tmp/send-cpu.XXXX)"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
sed -e "s|^plugin_dirs:.*|plugin_dirs: [ \"$BUILD/plugins\" ]|" \
    -e "s|^\( *\)path:.*|\1path: \"$TMP/d.db\"\n\1synchronous: \"full\"|" \
    -e "s|^\( *\)listen:.*|\1listen: \"127.0.0.1:$PORT\"|" "$REPO/configs/default.yaml" > "$TMP/d.yaml"
"$BUILD/host/swarmhost" serve -c "$TMP/d.yaml" --listen "127.0.0.1:$PORT" --log-level warn > "$TMP/d.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
for i in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 - "$PORT" "$TMP/ids" "$PREFILL" <<'PY'
import http.client, json, sys
port, out, prefill = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
def call(m, p, b=None):
    c.request(m, p, json.dumps(b), {"Content-Type": "application/json"}); r = c.getresponse(); d = r.read(); assert r.status < 300, d; return d
ids = [json.loads(call("POST", "/v1/sessions", {"user_id": "bench"}))["id"] for _ in range(64)]
open(out, "w").write("\n".join(ids) + "\n")
PY
if [ "$PREFILL" -gt 0 ]; then wrk -t2 -c16 -d$(( PREFILL * 64 / 400 + 1 ))s -s $REPO/bench/http_send/post_messages.lua "http://127.0.0.1:$PORT" -- "$TMP/ids" >/dev/null; fi
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
csw() { cat /proc/$PID/task/*/status | awk '/ctxt_switches/{s+=$2} END{print s}'; }
C0=$(cpu); S0=$(csw)
if [ -n "${PERF_OUT:-}" ]; then
  perf record -q ${PERF_ARGS:--g -F 999} -p $PID -o "$PERF_OUT" -- sleep "$SECS" >/dev/null 2>&1 &
fi
THREADS=$(( CONNS < 2 ? 1 : 2 ))
OUT=$(wrk -t$THREADS -c$CONNS -d${SECS}s -s $REPO/bench/http_send/post_messages.lua "http://127.0.0.1:$PORT" -- "$TMP/ids")
C1=$(cpu); S1=$(csw)
REQ=$(echo "$OUT" | awk '/requests in/{print $1}')
NON2=$(echo "$OUT" | awk '/Non-2xx/{print $NF}')
TCK=$(getconf CLK_TCK)
python3 -c "r=$REQ; print(f'build=$BUILD conns=$CONNS sends={r} req/s={r/$SECS:.0f} cpu_ms/send={($C1-$C0)/$TCK*1000/r:.3f} ctxsw/send={($S1-$S0)/r:.2f} non2xx=${NON2:-0} load=$(cut -d' ' -f1 /proc/loadavg)')"
