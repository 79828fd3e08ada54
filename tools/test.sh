#!/usr/bin/env bash
# Command 2 of the README: install what is missing, build everything, run the
# whole test suite. The last line printed is ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --test
tools/build.sh
cd "${SWH_BUILD_DIR:-build}"
# ctest prints its summary, then per-label times and the total; the summary
# ("N% tests passed, ...") is repeated last so it is the line a reader sees.
log="Testing/swh-test-output.log"
mkdir -p Testing
set +e
ctest --output-on-failure -j "${SWH_TEST_JOBS:-2}" --timeout 300 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E "tests passed|tests failed" "$log" | tail -1)
echo "${summary:-ctest printed no summary (exit $rc)}"
exit "$rc"
