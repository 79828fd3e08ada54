#!/usr/bin/env bash
# bench/sidebyside/run.sh [BUILD_DIR] — the daemon's OpenAI door as a gateway,
# side by side with its peers, in one run on loopback (issue 17):
#   direct       wrk straight to the fixed upstream (nginx answering a chat
#                completion from memory: bench/proxy/nginx.conf.in)
#   nginx-proxy  nginx as a keep-alive reverse proxy in front of it (the hop a
#                gateway is compared with)
#   portkey      the Portkey gateway from npm (@portkey-ai/gateway, headers
#                x-portkey-provider: openai, x-portkey-custom-host: upstream)
#   daemon       swarmhost, openai provider -> the upstream, SQLite storage
# Every round runs every target at every connection count, the order of the
# targets rotating from round to round, so background load hits them alike.
# Prints per target the mean over rounds of req/s, p50 and p99, the CPU each
# process spent per request (utime+stime from /proc over the wrk run: the
# cost that decides throughput on a busy machine), RSS, and the ratios
# daemon/nginx-proxy, daemon/portkey and the p50 added over direct.
# Builds nothing: BUILD_DIR (default /work/main/build) must hold host/swarmhost
# and plugins/swh_provider_openai.so, swh_storage_sqlite.so.
# Environment: ROUNDS (3), DURATION (wrk seconds, 5), CONNECTIONS ("1 64"),
# TARGETS ("direct nginx-proxy portkey daemon"), PORTKEY_DIR (where the npm
# package is installed once and reused; default ~/.cache/swarmhost-bench/portkey),
# PORTKEY_VERSION (1.15.2). Loopback only (npm install aside). Last line:
# `SUMMARY sidebyside key=value ...` (bench/summarize.py).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "${1:-/work/main/build}" && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-1 64}"
TARGETS="${TARGETS:-direct nginx-proxy portkey daemon}"
PORTKEY_VERSION="${PORTKEY_VERSION:-1.15.2}"
PORTKEY_DIR="${PORTKEY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/swarmhost-bench/portkey}"
BENCH_NAME="sidebyside/run.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"

SWARMHOST="$BUILD/host/swarmhost"
for f in "$SWARMHOST" "$BUILD/plugins/swh_provider_openai.so" "$BUILD/plugins/swh_storage_sqlite.so"; do
  [[ -e "$f" ]] || bench_die "missing $f"
done
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || bench_die "$tool not installed"
done
wants() { [[ " $TARGETS " == *" $1 "* ]]; }

bench_init sidebyside
echo "# sidebyside: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# build: $BUILD, swarmhost $(sha256sum "$SWARMHOST" | cut -c1-12) of $(date -u -r "$SWARMHOST" +%H:%M:%SZ);" \
     "$ROUNDS rounds x wrk ${DURATION}s; targets: $TARGETS"

# ------------------------------------------------------------------ nginx
start_fixed_nginx
UPSTREAM="$NGINX"

# ----------------------------------------------------------------- daemon
PORT="$(free_port)"
write_proxy_daemon_config "$TMP/swarmhost.yaml" "$PORT" "$UPSTREAM/v1"
bench_spawn "$TMP/swarmhost.log" "$SWARMHOST" serve -c "$TMP/swarmhost.yaml" --log-level warn
DAEMON_PID=$SPAWNED_PID
wait_http "http://127.0.0.1:$PORT/healthz" "$DAEMON_PID" swarmhost "$TMP/swarmhost.log"

# ---------------------------------------------------------------- portkey
PORTKEY_PID=""
if wants portkey; then
  command -v node >/dev/null || bench_die "node not installed (needed for the portkey target; or TARGETS without it)"
  PK_MAIN="$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js"
  if [[ ! -e "$PK_MAIN" ]] ||
     ! grep -q "\"version\": \"$PORTKEY_VERSION\"" "$PORTKEY_DIR/node_modules/@portkey-ai/gateway/package.json"; then
    mkdir -p "$PORTKEY_DIR"
    echo "# installing @portkey-ai/gateway@$PORTKEY_VERSION into $PORTKEY_DIR"
    (cd "$PORTKEY_DIR" && npm install --no-audit --no-fund --ignore-scripts "@portkey-ai/gateway@$PORTKEY_VERSION" \
      > "$TMP/npm.log" 2>&1) || { cat "$TMP/npm.log" >&2; bench_die "npm install of @portkey-ai/gateway failed"; }
  fi
  PK_PORT="$(free_port)"
  bench_spawn "$TMP/portkey.log" node "$PK_MAIN" --port="$PK_PORT" --headless
  PORTKEY_PID=$SPAWNED_PID
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PK_PORT/" && break
    kill -0 "$PORTKEY_PID" 2>/dev/null || { cat "$TMP/portkey.log" >&2; bench_die "portkey exited"; }
    sleep 0.1
  done
fi
PK_HEADERS=("x-portkey-provider: openai" "x-portkey-custom-host: $UPSTREAM/v1" "Authorization: Bearer unused")

url_of() {
  case $1 in
    direct) echo "$UPSTREAM/v1/chat/completions" ;;
    nginx-proxy) echo "$NGINX_PROXY/v1/chat/completions" ;;
    portkey) echo "http://127.0.0.1:$PK_PORT/v1/chat/completions" ;;
    daemon) echo "http://127.0.0.1:$PORT/v1/chat/completions" ;;
  esac
}
headers_of() { [[ $1 == portkey ]] && printf '%s\n' "${PK_HEADERS[@]}"; return 0; }

# Every path answers the fixed reply before anything is timed.
BODY='{"model":"up","messages":[{"role":"user","content":"hello world"}]}'
for target in $TARGETS; do
  args=()
  while IFS= read -r h; do [[ -n "$h" ]] && args+=(-H "$h"); done < <(headers_of "$target")
  curl -sf -H 'Content-Type: application/json' "${args[@]}" -d "$BODY" "$(url_of "$target")" |
    grep -q 'fixed reply from the nginx stand-in' || bench_die "no expected reply through $target"
done

# CPU ticks (utime+stime) of a process and its children's threads: nginx's
# workers are its children, so nginx is counted as master + workers.
ticks_of() { # PID...
  local total=0 pid t
  for pid in "$@"; do
    t="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    total=$((total + t))
  done
  echo "$total"
}
pids_of() { # TARGET -> the processes whose CPU the target costs
  case $1 in
    direct | nginx-proxy) echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')" ;;
    portkey) echo "$PORTKEY_PID" ;;
    daemon) echo "$DAEMON_PID" ;;
  esac
}
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ------------------------------------------------------------------ rounds
read -ra TARGET_LIST <<< "$TARGETS"
RESULTS="$TMP/results.txt"
: > "$RESULTS"
for round in $(seq "$ROUNDS"); do
  n=${#TARGET_LIST[@]}
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${TARGET_LIST[$(((i + round - 1) % n))]}"); done
  for c in $CONNECTIONS; do
    t=$((c < 2 ? 1 : 2))
    for target in "${order[@]}"; do
      args=()
      while IFS= read -r h; do [[ -n "$h" ]] && args+=("$h"); done < <(headers_of "$target")
      # shellcheck disable=SC2046
      before="$(ticks_of $(pids_of "$target"))"
      res="$(run_wrk "$target-c$c-r$round" "$t" "$c" "$HERE/../proxy/post_chat.lua" "$(url_of "$target")" up "${args[@]}")"
      # shellcheck disable=SC2046
      after="$(ticks_of $(pids_of "$target"))"
      echo "target=$target conns=$c round=$round ticks=$((after - before)) $res" >> "$RESULTS"
    done
  done
  echo "# round $round done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done

RSS="daemon=$(rss_kb "$DAEMON_PID") nginx=$(( $(rss_kb "$NGINX_PID") + $(for p in $(pgrep -P "$NGINX_PID"); do rss_kb "$p"; done | paste -sd+ | bc) ))"
[[ -n "$PORTKEY_PID" ]] && RSS+=" portkey=$(rss_kb "$PORTKEY_PID")"
DAEMON_WARNINGS="$(grep -ciE '(warn|error|critical)' "$TMP/swarmhost.log" || true)"

# ------------------------------------------------------------------ report
python3 - "$RESULTS" "$(getconf CLK_TCK)" "$RSS" "$DAEMON_WARNINGS" "$CONNECTIONS" "$TARGETS" <<'PY'
import statistics, sys
path, hz, rss, warnings, conns, targets = sys.argv[1:7]
hz = int(hz)
rows = [dict(p.split("=", 1) for p in line.split()) for line in open(path)]
conns, targets = conns.split(), targets.split()
mean = statistics.mean
stats, out = {}, []
print()
print(f"{'POST /v1/chat/completions':28} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} "
      f"{'errors':>7}   (mean of {len(set(r['round'] for r in rows))} rounds)")
for c in conns:
    for t in targets:
        rs = [r for r in rows if r["target"] == t and r["conns"] == c]
        rps = mean(float(r["rps"]) for r in rs)
        p50 = mean(int(r["p50_us"]) for r in rs) / 1000
        p99 = mean(int(r["p99_us"]) for r in rs) / 1000
        cpu = mean(int(r["ticks"]) / hz * 1e6 / max(1, int(r["requests"])) for r in rs)
        err = sum(int(r[k]) for r in rs for k in ("non2xx", "connect_err", "read_err", "write_err", "timeouts"))
        stats[(t, c)] = (rps, p50, p99, cpu)
        print(f"{t:28} {c:>5} {rps:9.0f} {p50:8.3f} {p99:8.3f} {cpu:10.1f} {err:7d}")
        key = t.replace("-", "_")
        out += [f"{key}_c{c}_rps={rps:.1f}", f"{key}_c{c}_p50_ms={p50:.3f}", f"{key}_c{c}_p99_ms={p99:.3f}",
                f"{key}_c{c}_cpu_us={cpu:.1f}", f"{key}_c{c}_errors={err}"]
print()
for c in conns:
    if ("daemon", c) not in stats:
        continue
    d = stats[("daemon", c)]
    parts = []
    if ("nginx-proxy", c) in stats:
        x = stats[("nginx-proxy", c)]
        parts.append(f"daemon/nginx-proxy req/s {d[0] / x[0]:.3f}")
        out.append(f"ratio_vs_nginx_proxy_c{c}={d[0] / x[0]:.4f}")
        if ("direct", c) in stats:
            # nginx serves both the proxy and the upstream: its hop is the
            # proxy run's CPU per request less the direct run's.
            hop = x[3] - stats[("direct", c)][3]
            parts.append(f"nginx hop CPU {hop:.1f} us/req vs daemon {d[3]:.1f}")
            out.append(f"nginx_hop_cpu_us_c{c}={hop:.1f}")
    if ("portkey", c) in stats:
        p = stats[("portkey", c)]
        parts.append(f"daemon/portkey req/s {d[0] / p[0]:.2f}")
        out.append(f"ratio_vs_portkey_c{c}={d[0] / p[0]:.4f}")
    if ("direct", c) in stats:
        n = stats[("direct", c)]
        parts.append(f"p50 added over direct: daemon {d[1] - n[1]:+.3f} ms")
        out.append(f"daemon_added_p50_ms_c{c}={d[1] - n[1]:.3f}")
        if ("nginx-proxy", c) in stats:
            parts[-1] += f", nginx-proxy {stats[('nginx-proxy', c)][1] - n[1]:+.3f} ms"
        if ("portkey", c) in stats:
            parts[-1] += f", portkey {stats[('portkey', c)][1] - n[1]:+.3f} ms"
    print(f"{c} conn: " + "; ".join(parts))
print(f"RSS after the runs (kB): {rss}; daemon log warn/error lines: {warnings}")
out += [f"rss_kb_{kv}" for kv in rss.split()] + [f"daemon_log_warnings={warnings}"]
print("SUMMARY sidebyside " + " ".join(out))
PY
