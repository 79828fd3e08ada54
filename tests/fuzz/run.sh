#!/usr/bin/env bash
# Build (if needed) and run libFuzzer targets for a bounded time.
#
#   tests/fuzz/run.sh TARGET|all SECONDS [extra libFuzzer flags...]
#
# TARGET: fuzz_manifest, fuzz_request_body, fuzz_request_query, fuzz_sse, fuzz_upload, or
# `all` (each in turn, SECONDS each). Builds into $SWH_FUZZ_BUILD_DIR
# (default ./build-fuzz, CMake preset `fuzz`: clang-14, ASan+UBSan, -j2).
# The committed seeds in tests/fuzz/corpus/<target>/ are read, never
# written: new inputs go to <build>/corpus/<target>/, crashes to
# <build>/artifacts/<target>/. Exit status: 0 when no target crashed, 1 when
# one did (its reproducer path is printed), 2 on usage/build errors.
# One summary line per target: "fuzz <target>: OK|CRASH <execs> execs in <s> s ...".
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
targets_all=(fuzz_manifest fuzz_request_body fuzz_request_query fuzz_sse fuzz_upload fuzz_json_text
  fuzz_vendor_stream fuzz_session_routes fuzz_stored_rows)

if [[ $# -lt 2 || ! "$2" =~ ^[0-9]+$ ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
target="$1"; seconds="$2"; shift 2
if [[ "$target" == all ]]; then targets=("${targets_all[@]}"); else targets=("$target"); fi
for t in "${targets[@]}"; do
  [[ " ${targets_all[*]} " == *" $t "* ]] || { echo "run.sh: unknown target '$t' (one of: ${targets_all[*]} all)" >&2; exit 2; }
done

build="${SWH_FUZZ_BUILD_DIR:-$root/build-fuzz}"
jobs="${SWH_FUZZ_JOBS:-2}"
cxx="${SWH_FUZZ_CXX:-clang++-14}"
cc="${SWH_FUZZ_CC:-clang-14}"
if [[ ! -f "$build/build.ninja" ]]; then
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_CXX_COMPILER="$cxx" -DSWH_FUZZ=ON >"$build/fuzz-configure.log" 2>&1 \
    || { cat "$build/fuzz-configure.log" >&2; echo "run.sh: configure failed" >&2; exit 2; }
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1 \
  || { tail -50 "$build/fuzz-build.log" >&2; echo "run.sh: build failed" >&2; exit 2; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
status=0
for t in "${targets[@]}"; do
  work="$build/corpus/$t"; artifacts="$build/artifacts/$t"; log="$build/fuzz-$t.log"
  mkdir -p "$work" "$artifacts"
  dict=(); [[ -f "$here/$t.dict" ]] && dict=(-dict="$here/$t.dict")
  start=$(date +%s)
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$@" "$work" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  if [[ $rc -eq 0 ]]; then
    echo "fuzz $t: OK ${execs:-?} execs in ${took} s, cov ${cov:-?}, corpus $(ls "$work" | wc -l) (+$(ls "$here/corpus/$t" | wc -l) seeds)"
  else
    status=1
    crash=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //')
    echo "fuzz $t: CRASH (exit $rc) after ${execs:-?} execs in ${took} s; reproducer: ${crash:-none written}; log: $log"
    grep -m1 -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz_[a-z_]*: " "$log" | sed 's/^/    /'
    echo "    replay: $build/tests/fuzz/$t ${crash:-<file>}  (commit it as tests/fuzz/corpus/$t/crash-<what>)"
  fi
done
exit $status
