#!/usr/bin/env bash
# End-to-end: examples/terasort against reference.py (python's sort of the input records):
# generated records plus hand-made ones whose keys are all 0x00, all 0xFF, mixed, and equal;
# the part files concatenated must be the input records ordered by key (equal keys in any
# order, same multiset). A ~50 MB run with ember.executor.memory=8m exercises spilling.
source "$(dirname "$0")/lib.sh"
need_file "$EX/terasort"
need_file "$EMBER"
REF="$PY $EMBER_SRC/tests/e2e/reference.py"

check()
{
    local name=$1 master=$2 input=$3
    shift 3
    expect_ok "$name" "$EX/terasort" --master "$master" "$@" "$input" "$T/out-$name" || return
    if $REF terasort "$T/out-$name" "$input" >"$T/$name.diff" 2>&1; then
        pass "$name"
    else
        fail "$name: output differs from the reference"
        sed 's/^/    /' "$T/$name.diff" | head -20
    fi
}

"$EMBER" gen terasort --records 20000 --seed 5 --files 3 "$T/small" &&
    $REF mkrecords "$T/small/edge.bin" || { fail "making inputs"; finish; }
check edge-keys 'local[2]' "$T/small/edge.bin"
check small-dir 'local[2]' "$T/small" --conf ember.files.maxPartitionBytes=256k
check small-local1 'local[1]' "$T/small"
check small-local4 'local[4]' "$T/small/part-00001"

# Empty input: a valid (empty) sorted output.
: >"$T/empty.bin"
check empty 'local[2]' "$T/empty.bin"

# ~50 MB with little memory: the sort must spill and still be right.
"$EMBER" gen terasort --records 500000 --seed 9 "$T/big.bin" || { fail "gen big"; finish; }
check spill 'local[2]' "$T/big.bin" --conf ember.executor.memory=8m

finish
