#!/usr/bin/env bash
# Command 1 of the README: install what is missing, build what the daemon
# needs (target swh_daemon: the daemon, the plugin host and the plugins; not
# the tests and benchmarks, which tools/test.sh builds), and start the daemon
# on the embedded default (SQLite + echo provider, no keys).
# Extra arguments go to `swarmhost serve`, e.g. --listen 127.0.0.1:9000.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
SWH_BUILD_TARGETS=swh_daemon tools/build.sh
exec ./build/host/swarmhost serve -c configs/default.yaml "$@"
