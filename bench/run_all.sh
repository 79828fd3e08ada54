#!/usr/bin/env bash
# bench/run_all.sh [BUILD_DIR] — every benchmark, one run each (~2 minutes).
# Build first (Release, own build dir):
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release
#   ninja -C build-bench -j2 bench_all
# Each benchmark prints ratios against a baseline measured in the same run.
# For the numbers in docs/benchmarks.md: run it several times, keep the logs,
# and take medians with bench/summarize.py LOG...
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "${1:-/work/main/build-bench}" && pwd)"

echo "# swarmhost benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"\
     "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# build: $BUILD ($(grep -m1 '^CMAKE_BUILD_TYPE' "$BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2))"
echo

echo "## abi_call"
# ABI_ARGS: extra options for bench_abi_call, e.g. ABI_ARGS="--calls 10000000"
"$BUILD/bench/bench_abi_call" ${ABI_ARGS:-}
echo "## isolation"
"$BUILD/bench/isolation/bench_isolation"
echo "## http_send"
"$HERE/http_send/run.sh" "$BUILD"
echo "## http_read"
"$HERE/http_read/run.sh" "$BUILD"
