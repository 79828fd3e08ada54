#!/usr/bin/env bash
# bench/compare/run.sh BASE_REV [NEW_REV] — is NEW_REV slower than BASE_REV?
# Builds (RelWithDebInfo, the default build) the daemon, every plugin and sqlite_baseline
# of both revisions in git worktrees under $WORK (default /tmp/swh-compare),
# then runs the send benchmark (bench/http_send/run.sh) and the proxy
# benchmark (bench/proxy/run.sh) of BASE_REV against each build (a newer
# daemon still reads the older scripts' manifests; the reverse is not true),
# alternating BASE, NEW, BASE, NEW... for $ROUNDS rounds so that drift in
# machine load hits both alike. Prints each key's median per revision and
# NEW/BASE (for req/s higher is better, for latencies lower is better).
# NEW_REV defaults to HEAD. Environment: ROUNDS (default 2), DURATION (wrk
# seconds per run, default 5), SAMPLES (proxy samples, default 100),
# BUILD_ONLY=1 (build both, run nothing). Loopback only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BASE_REV="${1:?usage: bench/compare/run.sh BASE_REV [NEW_REV]}"
NEW_REV="${2:-HEAD}"
WORK="${WORK:-/tmp/swh-compare}"
ROUNDS="${ROUNDS:-2}"
export DURATION="${DURATION:-5}" SAMPLES="${SAMPLES:-100}" SESSIONS="${SESSIONS:-64}" SQLITE_SECONDS="${SQLITE_SECONDS:-2}"
# The daemon, sqlite_baseline and every plugin (the send benchmark's full
# pipeline loads middleware, hooks and session types).
TARGETS=(swarmhost sqlite_baseline)
for plugin in "$REPO"/plugins/*/; do TARGETS+=("swh_$(basename "$plugin")"); done

build_rev() { # REV -> prints the build dir
  local rev sha dir
  rev="$1"
  sha="$(git -C "$REPO" rev-parse --short=12 "$rev^{commit}")"
  dir="$WORK/$sha"
  if [[ ! -d "$dir/src" ]]; then
    mkdir -p "$dir"
    git -C "$REPO" worktree add --detach "$dir/src" "$sha" >&2
  fi
  cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER_LAUNCHER="$(command -v ccache || true)" \
    -DCMAKE_C_COMPILER_LAUNCHER="$(command -v ccache || true)" >"$dir/configure.log" 2>&1 ||
    { tail -20 "$dir/configure.log" >&2; exit 1; }
  cmake --build "$dir/build" -j"$(nproc)" --target "${TARGETS[@]}" >"$dir/build.log" 2>&1 ||
    { tail -20 "$dir/build.log" >&2; exit 1; }
  echo "$dir/build"
}

echo "# compare: base $BASE_REV, new $NEW_REV; building both (logs under $WORK)" >&2
BASE_BUILD="$(build_rev "$BASE_REV")"
NEW_BUILD="$(build_rev "$NEW_REV")"
[[ "${BUILD_ONLY:-0}" == 1 ]] && { echo "built: $BASE_BUILD $NEW_BUILD"; exit 0; }

LOGS="$WORK/logs.$$"
mkdir -p "$LOGS/base" "$LOGS/new"
echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds, wrk ${DURATION}s"
for round in $(seq "$ROUNDS"); do
  for side in base new; do
    build="$BASE_BUILD"; [[ "$side" == new ]] && build="$NEW_BUILD"
    for bench in http_send proxy; do
      echo "# round $round: $bench on $side" >&2
      "$BASE_BUILD/../src/bench/$bench/run.sh" "$build" >"$LOGS/$side/$bench.$round.log" 2>&1 ||
        { tail -20 "$LOGS/$side/$bench.$round.log" >&2; exit 1; }
    done
  done
done

python3 - "$LOGS" "$BASE_REV" "$NEW_REV" <<'PY'
import glob, os, statistics, sys
logs, base_rev, new_rev = sys.argv[1:]
def medians(side):
    values = {}
    for path in glob.glob(os.path.join(logs, side, "*.log")):
        for line in open(path):
            if line.startswith("SUMMARY "):
                _, group, *pairs = line.split()
                for pair in pairs:
                    key, _, value = pair.partition("=")
                    values.setdefault((group, key), []).append(float(value))
    return {k: statistics.median(v) for k, v in values.items()}
base, new = medians("base"), medians("new")
print(f"{'group':8} {'key':28} {'base ' + base_rev:>18} {'new ' + new_rev:>18} {'new/base':>9}")
for key in sorted(base.keys() & new.keys()):
    b, n = base[key], new[key]
    ratio = f"{n / b:9.3f}" if b else "      n/a"
    print(f"{key[0]:8} {key[1]:28} {b:18.6g} {n:18.6g} {ratio}")
PY
