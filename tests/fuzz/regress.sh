#!/usr/bin/env bash
# The fuzz regression run of one target (ctest fuzz/<name>; see tests/fuzz/fuzz.h): makes the
# target's seeds, then replays them and the committed corpus tests/fuzz/corpus/<name> (crash
# reproducers and hand-made inputs, when there are any), each followed by FUZZ_MUTATIONS
# (default 1000) deterministic mutations. Under an ASan build this is a sanitizer regression
# run; it never needs clang or libFuzzer.
#   regress.sh TARGET_BINARY NAME WORK_DIR
# A failing input is left in WORK_DIR/NAME/fuzz-NAME-failure (replay it: TARGET_BINARY FILE).
set -euo pipefail
bin=$1 name=$2 work=$3
src=$(cd "$(dirname "$0")" && pwd)
seeds=$work/$name/seeds
rm -rf "$seeds"
mkdir -p "$seeds"
EMBER_FUZZ_SEEDS=$seeds "$bin"
dirs=("$seeds")
[ -d "$src/corpus/$name" ] && dirs+=("$src/corpus/$name")
cd "$work/$name"
exec "$bin" -m "${FUZZ_MUTATIONS:-1000}" "${dirs[@]}"
