#!/usr/bin/env bash
# Scaffold a plugin with the swarmhost binary of this checkout's build tree.
#   tools/new-plugin/new-plugin.sh --kind middleware --name my_filter --lang cpp --dir /tmp/my_filter
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${SWH_BINARY:-$root/${SWH_BUILD_DIR:-build}/host/swarmhost}"
[ -x "$bin" ] || { echo "no swarmhost binary at $bin (build first, or set SWH_BINARY)" >&2; exit 2; }
exec "$bin" new-plugin "$@"
