#!/usr/bin/env bash
# bench/fleet/counter_commit.sh — what `synchronous_commit = off` would save on
# the shared-limit counters of the postgres store (docs/fleet.md, "Cost").
# Runs the plugin's own counter_add statement (an upsert into swh_counters,
# the table of schema migration 4) through pgbench against one real
# PostgreSQL 15 on loopback (tests/tooling/swh_servers.py), with
# synchronous_commit on (the server's default) and off for the session
# (what `SET LOCAL synchronous_commit = off` would give each counter call), at
# 1 and CLIENTS clients, over KEYS keys. Prints transactions per second and
# mean latency per setting and a last line `SUMMARY counter_commit ...`.
# Environment: DURATION (seconds per run, default 5), CLIENTS (default 8),
# KEYS (default 64). Builds nothing; needs postgresql (tools/install-deps.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-5}"
CLIENTS="${CLIENTS:-8}"
KEYS="${KEYS:-64}"
BENCH_NAME="fleet/counter_commit.sh"
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"
PGBIN=/usr/lib/postgresql/15/bin
[[ -x "$PGBIN/pgbench" ]] || bench_die "PostgreSQL 15 not installed (tools/install-deps.sh)"

bench_init counter_commit
echo "# counter_commit: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_postgres
echo "# postgres: $CONNINFO"

# The table and statement as plugins/storage_postgres/src/pg_store.cpp has them.
"$PGBIN/psql" -q "$CONNINFO" -c "CREATE TABLE IF NOT EXISTS swh_counters (key text PRIMARY KEY,
  value bigint NOT NULL, window_end timestamptz NOT NULL)"
cat > "$TMP/counter.sql" <<SQL
\set k random(1, $KEYS)
INSERT INTO swh_counters AS c (key, value, window_end)
  VALUES ('bench/' || :k, 1, clock_timestamp() + 60000 * interval '1 millisecond')
  ON CONFLICT (key) DO UPDATE SET
  value = CASE WHEN c.window_end <= clock_timestamp() THEN excluded.value ELSE c.value + excluded.value END,
  window_end = CASE WHEN c.window_end <= clock_timestamp() THEN excluded.window_end ELSE c.window_end END
  RETURNING value;
SQL

summary="SUMMARY counter_commit"
printf "%-22s %8s %10s %12s\n" setting clients tps latency_ms
for commit in on off; do
  for clients in 1 "$CLIENTS"; do
    out="$(PGOPTIONS="-c synchronous_commit=$commit" "$PGBIN/pgbench" -n -M prepared -f "$TMP/counter.sql" \
      -c "$clients" -j "$clients" -T "$DURATION" "$CONNINFO" 2>&1)" || bench_die "pgbench failed: $out"
    tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<< "$out" | head -1)"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<< "$out")"
    printf "%-22s %8s %10s %12s\n" "synchronous_commit=$commit" "$clients" "$tps" "$lat"
    summary+=" sync_${commit}_c${clients}_tps=$tps"
  done
done
echo "$summary"
