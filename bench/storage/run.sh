#!/usr/bin/env bash
# Storage benchmark: builds bench_storage in <build> and runs it.
#   bench/storage/run.sh [build-dir] [bench_storage args...]
# e.g. bench/storage/run.sh build-bench --messages 2000 --reads 2000 --big 100000
set -euo pipefail
build="${1:-build-bench}"
shift || true
ninja -C "$build" -j2 bench_storage
exec "$build/bench/storage/bench_storage" "$@"
