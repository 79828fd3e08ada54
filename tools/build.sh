#!/usr/bin/env bash
# Configures and builds swarmhost into ./build (or $SWH_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${SWH_BUILD_DIR:-build}"
jobs="${SWH_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${SWH_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
