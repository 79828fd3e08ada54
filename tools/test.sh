#!/usr/bin/env bash
# Command 2 of the README: install what is missing, build everything, run the
# whole test suite. The last line printed is ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --test
tools/build.sh
cd "${SWH_BUILD_DIR:-build}"
exec ctest --output-on-failure -j "${SWH_TEST_JOBS:-2}" --timeout 300
