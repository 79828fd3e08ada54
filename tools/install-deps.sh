#!/usr/bin/env bash
# Installs the Debian 12 packages swarmhost needs to build, run and test,
# only those that are missing (so a second run costs nothing).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost-dev libboost-filesystem-dev libboost-program-options-dev
  libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libcurl4-openssl-dev libssl-dev
  libsqlite3-dev sqlite3 catch2 python3 curl
  # libsimdjson-dev: the openai provider reads upstream answers with it (issue 17).
  libsimdjson-dev
  # libmimalloc-dev: the daemon's malloc (CMake SWH_ALLOCATOR, issue 17).
  libmimalloc-dev
)
if [ "${1:-}" = "--test" ]; then
  # The test suite also needs the real servers and tools it drives.
  # libmongoc-dev: the mongodb storage plugin (its tests run the CongoDB emulator on Node.js).
  # chromium + fonts-dejavu-core: the console's browser test (tests/console, driven by puppeteer-core).
  # haproxy: the load balancer in front of the fleet test's three daemons (tests/fleet).
  # g++-mingw-w64-x86-64-posix: Windows .dll plugins cross-built (tests/windows); the x86-64, POSIX-threads
  #   part of the mingw-w64 metapackage, which also pulls the 32-bit and win32-threads compilers.
  # cargo (Debian's, rustc 1.63): the Rust example plugin (tests/rust).
  # dpkg-dev (dpkg-shlibdeps: CPack's Depends) + lintian + systemd (systemd-analyze verify on the unit):
  # the Debian package test (tests/packaging).
  packages+=(libhiredis-dev redis-server redis-tools libpq-dev postgresql libmongoc-dev libbson-dev abigail-tools clang
    libclang-rt-14-dev chromium fonts-dejavu-core haproxy g++-mingw-w64-x86-64-posix cargo dpkg-dev lintian systemd)
  # fiu-utils: libfiu's fiu-run / fiu-ctrl, disk-full and failing-fsync faults (tests/durability).
  packages+=(fiu-utils)
fi
if [ "${1:-}" = "--bench" ]; then
  # bench/: wrk drives the HTTP benches, nginx is the fixed upstream and the
  # reverse proxy they are compared with, perf and valgrind profile.
  packages+=(wrk nginx-light linux-perf valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
