#!/usr/bin/env bash
# bench/fleet/run.sh [BUILD_DIR] — 1, 2 and 3 daemons on one PostgreSQL behind
# nginx as a load balancer (issue 18), with the baselines in the same run:
#   direct-1       one daemon, wrk straight to it (no load balancer)
#   lb-N           N daemons behind nginx (upstream keepalive, round robin),
#                  `limits: {shared: storage}`: the fleet's limits in the store
#   lb-N-local     the same N daemons with `limits: {shared: local}`: each
#                  daemon counts alone, so the cost of sharing is the difference
# Every daemon: storage postgres (one real PostgreSQL 15 on loopback, started by
# tests/tooling/swh_servers.py), echo provider, `events: {carrier: storage}`,
# an API key with a rate limit far above the load (so the shared rate window,
# the key-guessing check and a lease per send on max_messages_per_session are
# on the path, and nothing is refused). Each setup gets fresh daemons and fresh
# sessions (its own key and user) on the same database, and is measured with
#   send  POST /v1/sessions/{id}/messages over $SESSIONS sessions ($CONNS conns)
#   read  GET  /v1/sessions/{id}/messages?limit=50
# and its consistency is checked: acknowledged sends vs stored messages.
# The CPU each process spent during the send run (utime+stime from /proc, % of
# one core) says where the 2 cores went. Prints a table, ratios, and a last
# line `SUMMARY fleet key=value ...`.
# Builds nothing: BUILD_DIR (default /work/main/build) must hold host/swarmhost,
# plugins/swh_storage_postgres.so and plugins/swh_provider_echo.so.
# Environment: DURATION (wrk seconds, default 5), CONNS (default 32),
# SESSIONS (default 64), SETUPS (default "direct-1 lb-1 lb-2 lb-3 lb-1-local
# lb-2-local lb-3-local"). Loopback only. Everything it starts is stopped on
# exit (bench/lib.sh; PostgreSQL dies with its supervisor).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="$(cd "${1:-/work/main/build}" && pwd)"
DURATION="${DURATION:-5}"
CONNS="${CONNS:-32}"
SESSIONS="${SESSIONS:-64}"
SETUPS="${SETUPS:-direct-1 lb-1 lb-2 lb-3 lb-1-local lb-2-local lb-3-local}"
BENCH_NAME="fleet/run.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"

SWARMHOST="$BUILD/host/swarmhost"
for f in "$SWARMHOST" "$BUILD/plugins/swh_storage_postgres.so" "$BUILD/plugins/swh_provider_echo.so"; do
  [[ -e "$f" ]] || bench_die "missing $f"
done
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || bench_die "$tool not installed"
done
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || bench_die "PostgreSQL 15 not installed (tools/install-deps.sh)"

bench_init fleet
HZ="$(getconf CLK_TCK)"
echo "# fleet: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# build: $BUILD, swarmhost $(sha256sum "$SWARMHOST" | cut -c1-12); wrk ${DURATION}s per run," \
     "$CONNS conns, $SESSIONS sessions; setups: $SETUPS"

# -------------------------------------------------------------- postgres
start_postgres
POSTMASTER="$(pgrep -P "$PG_SUPERVISOR" -x postgres | head -1)" # the supervisor's child
[[ -n "$POSTMASTER" ]] || bench_die "no postgres process under the supervisor $PG_SUPERVISOR"
echo "# postgres: $CONNINFO (pid $POSTMASTER)"

# ------------------------------------------------------------- manifests
# One API key per setup (user bench-<setup>), so each setup's sessions are
# listed, and counted, apart from the others'.
KEYS_YAML=""
for setup in $SETUPS; do
  key="bench-key-$setup-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  printf -v "KEY_${setup//-/_}" '%s' "$key"
  KEYS_YAML+="    - { id: $setup, user: bench-$setup, role: user, sha256: \"$(printf %s "$key" | sha256sum | cut -d' ' -f1)\" }"$'\n'
done
write_manifest() { # FILE SHARED
  cat > "$1" <<EOF
server:
  listen: "127.0.0.1:0"
  max_messages_per_session: 1000000   # a cap far away: one lease per send, never a refusal
plugin_dirs: [ "$BUILD/plugins" ]
storage:
  plugin: postgres
  config: { conninfo: "$CONNINFO", pool_size: 16 }
events: { carrier: storage }
limits: { shared: $2 }
auth:
  rate_per_second: 1000000            # far above the load: the check runs, nothing is refused
  burst: 1000000
  max_failures_per_minute: 60
  keys:
$KEYS_YAML
providers:
  - name: echo
    plugin: echo
EOF
}
write_manifest "$TMP/storage.yaml" storage
write_manifest "$TMP/local.yaml" local

# --------------------------------------------------------------- daemons
DAEMON_PIDS=()
DAEMON_PORTS=()
start_daemons() { # N SHARED SETUP
  local i port
  DAEMON_PIDS=()
  DAEMON_PORTS=()
  for i in $(seq "$1"); do
    port="$(free_port)"
    bench_spawn "$TMP/$3-d$i.log" "$SWARMHOST" serve -c "$TMP/$2.yaml" --listen "127.0.0.1:$port" --log-level warn
    DAEMON_PIDS+=("$SPAWNED_PID")
    DAEMON_PORTS+=("$port")
  done
  for i in $(seq 0 $(($1 - 1))); do
    wait_http "http://127.0.0.1:${DAEMON_PORTS[$i]}/healthz" "${DAEMON_PIDS[$i]}" "swarmhost $((i + 1))" "$TMP/$3-d$((i + 1)).log"
  done
}

NGINX_PID=""
start_lb() { # SETUP: nginx in front of DAEMON_PORTS; sets LB
  local port server_lines="" p
  port="$(free_port)"
  for p in "${DAEMON_PORTS[@]}"; do server_lines+="    server 127.0.0.1:$p max_fails=0;"$'\n'; done
  mkdir -p "$TMP/nginx-$1/tmp"
  cat > "$TMP/nginx-$1/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $TMP/nginx-$1/nginx.pid;
error_log $TMP/nginx-$1/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx-$1/tmp/body;
  proxy_temp_path $TMP/nginx-$1/tmp/proxy;
  fastcgi_temp_path $TMP/nginx-$1/tmp/fastcgi;
  uwsgi_temp_path $TMP/nginx-$1/tmp/uwsgi;
  scgi_temp_path $TMP/nginx-$1/tmp/scgi;
  keepalive_requests 1000000;
  upstream swarmhost {
$server_lines    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://swarmhost;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
EOF
  bench_spawn "$TMP/nginx-$1/stdout.log" nginx -c "$TMP/nginx-$1/nginx.conf" -p "$TMP/nginx-$1"
  NGINX_PID=$SPAWNED_PID
  LB="http://127.0.0.1:$port"
  wait_http "$LB/healthz" "$NGINX_PID" nginx "$TMP/nginx-$1/error.log"
}

# Sessions of the setup's user, created through URL; ids to FILE.
make_sessions() { # URL KEY USER FILE
  python3 - "$1" "$2" "$3" "$SESSIONS" "$4" <<'PY'
import http.client, json, sys, urllib.parse
base, key, user, n, ids_file = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
ids = []
for _ in range(n):
    c.request("POST", "/v1/sessions", body=json.dumps({"user_id": user}),
              headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
    r = c.getresponse()
    data = r.read()
    if r.status != 201:
        sys.exit(f"POST /v1/sessions: {r.status} {data[:200]!r}")
    ids.append(json.loads(data)["id"])
open(ids_file, "w").write("\n".join(ids) + "\n")
PY
}
stored_messages() { # URL KEY
  curl -sf -H "Authorization: Bearer $2" "$1/v1/sessions?limit=100000" |
    python3 -c 'import json,sys; print(sum(s["message_count"] for s in json.load(sys.stdin)["sessions"]))'
}

# CPU ticks (utime+stime) of processes; nginx and postgres count with their children.
ticks_of() { # PID...
  local total=0 pid t
  for pid in "$@"; do
    t="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    total=$((total + t))
  done
  echo "$total"
}
with_children() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }
cpu_snapshot() { # -> "daemons nginx postgres machine_busy machine_total"
  local nginx_ticks=0 busy_total
  # shellcheck disable=SC2046
  [[ -n "$NGINX_PID" ]] && nginx_ticks="$(ticks_of $(with_children "$NGINX_PID"))"
  busy_total="$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)"
  # shellcheck disable=SC2046
  echo "$(ticks_of "${DAEMON_PIDS[@]}") $nginx_ticks $(ticks_of $(with_children "$POSTMASTER")) $busy_total"
}

RESULTS="$TMP/results.txt"
: > "$RESULTS"
for setup in $SETUPS; do
  n="${setup#*-}"; n="${n%%-*}"
  shared=storage; [[ "$setup" == *-local ]] && shared=local
  keyvar="KEY_${setup//-/_}"
  key="${!keyvar}"
  start_daemons "$n" "$shared" "$setup"
  if [[ "$setup" == direct-* ]]; then
    URL="http://127.0.0.1:${DAEMON_PORTS[0]}"
  else
    start_lb "$setup"
    URL="$LB"
  fi
  make_sessions "$URL" "$key" "bench-$setup" "$TMP/sessions-$setup.txt"
  before="$(cpu_snapshot)"
  send="$(SWH_BENCH_SCRIPT=post_messages.lua SWH_BENCH_KEY="$key" \
    run_wrk "$setup-send" 2 "$CONNS" "$HERE/with_key.lua" "$URL" "$TMP/sessions-$setup.txt")"
  after="$(cpu_snapshot)"
  read="$(SWH_BENCH_SCRIPT=get_messages.lua SWH_BENCH_KEY="$key" \
    run_wrk "$setup-read" 2 "$CONNS" "$HERE/with_key.lua" "$URL" "$TMP/sessions-$setup.txt")"
  sleep 0.5 # sends in flight when wrk stopped finish
  stored="$(stored_messages "$URL" "$key")"
  warnings=0
  for i in $(seq "$n"); do
    w="$(grep -ciE '(warn|error|critical)' "$TMP/$setup-d$i.log" || true)"
    warnings=$((warnings + w))
  done
  for pid in "${DAEMON_PIDS[@]}"; do bench_stop "$pid"; done
  DAEMON_PIDS=()
  [[ -n "$NGINX_PID" ]] && bench_stop "$NGINX_PID"
  NGINX_PID=""
  read -r b_d b_n b_p b_busy b_all <<< "$before"
  read -r a_d a_n a_p a_busy a_all <<< "$after"
  {
    echo -n "setup=$setup daemons=$n shared=$shared stored=$stored warnings=$warnings "
    echo -n "cpu_daemons=$((a_d - b_d)) cpu_nginx=$((a_n - b_n)) cpu_postgres=$((a_p - b_p)) "
    echo -n "cpu_busy=$((a_busy - b_busy)) cpu_all=$((a_all - b_all)) "
    # shellcheck disable=SC2001 # a prefix for every key: a regex, not a substitution
    echo -n "$(sed 's/\([a-z0-9_]*\)=/send_\1=/g' <<< "$send") "
    # shellcheck disable=SC2001
    sed 's/\([a-z0-9_]*\)=/read_\1=/g' <<< "$read"
  } >> "$RESULTS"
  echo "# $setup done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
exec 3>&-
bench_stop "$PG_SUPERVISOR"

# ------------------------------------------------------------------ report
python3 - "$RESULTS" "$HZ" "$CONNS" <<'PY'
import sys
path, hz, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {}
for line in open(path):
    d = dict(p.split("=", 1) for p in line.split())
    rows[d["setup"]] = d
out, bad = [], 0
print()
print(f"{'setup':12} {'daemons':>7} {'limits':>7} {'send/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
      f"{'read/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}  CPU % of one core in the send run: "
      f"daemons nginx postgres machine")
for s, d in rows.items():
    secs = float(d["send_seconds"])
    pct = lambda k: 100 * int(d[k]) / hz / secs
    machine = 200 * int(d["cpu_busy"]) / max(1, int(d["cpu_all"]))  # all cores, % of one core
    err = sum(int(d[p + k]) for p in ("send_", "read_") for k in ("non2xx", "connect_err", "read_err", "write_err", "timeouts"))
    print(f"{s:12} {d['daemons']:>7} {d['shared']:>7} {float(d['send_rps']):8.0f} {int(d['send_p50_us'])/1000:7.2f} "
          f"{int(d['send_p99_us'])/1000:7.2f} {float(d['read_rps']):8.0f} {int(d['read_p50_us'])/1000:7.2f} "
          f"{int(d['read_p99_us'])/1000:7.2f} {err:6d}  {pct('cpu_daemons'):7.0f} {pct('cpu_nginx'):5.0f} "
          f"{pct('cpu_postgres'):8.0f} {machine:7.0f}")
    k = s.replace("-", "_")
    out += [f"{k}_send_rps={float(d['send_rps']):.1f}", f"{k}_send_p50_us={d['send_p50_us']}",
            f"{k}_send_p99_us={d['send_p99_us']}", f"{k}_read_rps={float(d['read_rps']):.1f}",
            f"{k}_read_p50_us={d['read_p50_us']}", f"{k}_read_p99_us={d['read_p99_us']}", f"{k}_errors={err}",
            f"{k}_cpu_daemons_pct={pct('cpu_daemons'):.0f}", f"{k}_cpu_nginx_pct={pct('cpu_nginx'):.0f}",
            f"{k}_cpu_postgres_pct={pct('cpu_postgres'):.0f}"]
    bad += err
print()
ratios = []
base = rows.get("direct-1")
for s, d in rows.items():
    if base and s.startswith("lb-") and not s.endswith("-local"):
        ratios.append((f"{s}/direct-1", "send", float(d["send_rps"]) / float(base["send_rps"])))
        ratios.append((f"{s}/direct-1", "read", float(d["read_rps"]) / float(base["read_rps"])))
    if s.endswith("-local") and s[:-6] in rows:
        x = rows[s[:-6]]
        ratios.append((f"{s[:-6]} (shared: storage)/{s}", "send", float(x["send_rps"]) / float(d["send_rps"])))
        ratios.append((f"{s[:-6]} (shared: storage)/{s}", "read", float(x["read_rps"]) / float(d["read_rps"])))
print("ratios of req/s (baselines from this run)")
for name, what, x in ratios:
    print(f"  {what:5} {name:44} {x:7.3f}")
    out.append(f"ratio_{what}_{name.split(' ')[0].replace('-', '_').replace('/', '_over_')}"
               f"{'_shared' if 'shared' in name else ''}={x:.4f}")
print()
for s, d in rows.items():
    acked = int(d["send_requests"]) - int(d["send_non2xx"])
    stored = int(d["stored"])
    # every acknowledged send stored its two messages; sends cut off by wrk's
    # stop (at most one per connection) may be stored without being counted
    ok = 2 * acked <= stored <= 2 * (acked + conns)
    bad += 0 if ok else 1
    print(f"consistency {s:12}: {acked} acknowledged sends -> {2 * acked}..{2 * (acked + conns)} messages expected, "
          f"{stored} stored [{'OK' if ok else 'MISMATCH'}]; warning/error lines in the daemons' logs: {d['warnings']}")
    out += [f"{s.replace('-', '_')}_acked={acked}", f"{s.replace('-', '_')}_stored={stored}",
            f"{s.replace('-', '_')}_consistent={int(ok)}"]
print("SUMMARY fleet " + " ".join(out))
sys.exit(1 if bad else 0)
PY
