#!/usr/bin/env bash
# Remakes docs/console/*.png: the console's views at a laptop width (light and
# dark) and at a phone width, against a real daemon seeded with sessions.
#   tools/console-screenshots.sh [build-dir]     (default: build)
# Needs chromium and npm (tools/install-deps.sh --test); the build's swarmhost
# and plugins.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
export SWH_BINARY="$build/host/swarmhost"
export SWH_PLUGIN_DIR="$build/plugins"
exec python3 "$repo/tests/console/run_console.py" --work "$build/tests/console/work-screenshots" \
  --screenshots "$repo/docs/console"
