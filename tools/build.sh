#!/usr/bin/env bash
# Configures and builds swarmhost into ./build (or $SWH_BUILD_DIR): every
# target, or only those named in $SWH_BUILD_TARGETS (e.g. "swh_daemon", what
# tools/run.sh needs). Arguments go to the CMake configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${SWH_BUILD_DIR:-build}"
jobs="${SWH_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${SWH_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
# shellcheck disable=SC2086 # several targets, space-separated
cmake --build "$build_dir" -j "$jobs" ${SWH_BUILD_TARGETS:+--target $SWH_BUILD_TARGETS}
