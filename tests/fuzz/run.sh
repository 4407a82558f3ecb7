#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets of tests/fuzz with libFuzzer (clang; coverage, ASan and
# UBSan everywhere) in $FUZZ_BUILD (default build-fuzz) and runs each for FUZZ_SECONDS (default
# 60) from its seeds (written by the target itself, see fuzz.h) and the committed corpus
# tests/fuzz/corpus/<name>. What libFuzzer learns is kept in $FUZZ_BUILD/fuzz/corpus/<name>
# between runs; a crash, leak or failed property leaves its input in
# $FUZZ_BUILD/fuzz/crashes/<name>/ and makes the exit status non-zero (after all targets ran).
#   FUZZ_TARGETS="proto stage"   only these targets (default: every tests/fuzz/fuzz_*.c)
#   FUZZ_RSS_MB=2048             libFuzzer's memory limit per input (-rss_limit_mb)
# Reproduce a finding: $FUZZ_BUILD/fuzz/fuzz_<name> CRASH_FILE
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$src/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}
if ! command -v clang >/dev/null; then
    echo "fuzz: clang is not installed (scripts/install-deps.sh installs it)" >&2
    exit 2
fi
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang cmake -S "$src" -B "$build" -DEMBER_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_C_FLAGS="-O1 -gline-tables-only" >"$build/configure.log" 2>&1 ||
        { cat "$build/configure.log" >&2; exit 2; }
fi
cmake --build "$build" --target fuzz_targets -j "${JOBS:-$(nproc)}" >"$build/fuzz-build.log" 2>&1 ||
    { tail -30 "$build/fuzz-build.log" >&2; exit 2; }
found=0
for t in $targets; do
    bin=$build/fuzz/fuzz_$t
    seeds=$build/fuzz/seeds/$t corpus=$build/fuzz/corpus/$t crashes=$build/fuzz/crashes/$t
    rm -rf "$seeds"
    mkdir -p "$corpus" "$crashes"
    EMBER_FUZZ_SEEDS=$seeds "$bin" 2>/dev/null || { echo "fuzz $t: cannot write seeds" >&2; found=1; continue; }
    dirs=("$corpus" "$seeds")
    [ -d "$src/tests/fuzz/corpus/$t" ] && dirs+=("$src/tests/fuzz/corpus/$t")
    log=$build/fuzz/$t.log
    echo "fuzz $t: ${seconds}s"
    if (cd "$crashes" && ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout=25 -print_final_stats=1 "${dirs[@]}" \
        >"$log" 2>&1); then
        grep -E "^stat::number_of_executed_units|^#[0-9]+ *DONE" "$log" | tail -2 | sed "s/^/  /"
    else
        found=1
        echo "fuzz $t: FINDING — see $log; inputs in $crashes" >&2
        grep -E "ERROR|SUMMARY|property failed|==[0-9]+==" "$log" | head -5 | sed "s/^/  /" >&2
    fi
done
exit $found
