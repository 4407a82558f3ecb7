#!/usr/bin/env bash
# End-to-end: examples/wordcount against reference.py's word count (split on exactly the six
# ASCII whitespace bytes) on tricky inputs: empty file, no trailing newline, CRLF, a 5 MB line,
# non-UTF-8 and NUL bytes, \t \v \f, a file cut into many splits (lines crossing them), a
# directory and a glob; on local[1], local[2] and local[4].
source "$(dirname "$0")/lib.sh"
need_file "$EX/wordcount"
REF="$PY $EMBER_SRC/tests/e2e/reference.py"

$REF mkinputs-wordcount "$T/in" || { fail "making inputs"; finish; }

# check NAME MASTER INPUT_ARG [REF_INPUTS...] [-- EXTRA_ARGS...]
check()
{
    local name=$1 master=$2 input=$3
    shift 3
    local refs=() extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do refs+=("$1"); shift; done
    [ $# -gt 0 ] && shift && extra=("$@")
    [ ${#refs[@]} -eq 0 ] && refs=("$input")
    expect_ok "$name" "$EX/wordcount" --master "$master" "${extra[@]}" "$input" "$T/out-$name" ||
        return
    if $REF wordcount "$T/out-$name" "${refs[@]}" >"$T/$name.diff" 2>&1; then
        pass "$name"
    else
        fail "$name: output differs from the reference"
        sed 's/^/    /' "$T/$name.diff" | head -20
    fi
}

for f in empty notrail crlf huge binary ws; do
    check "$f" 'local[2]' "$T/in/$f.txt"
done
for m in 1 2 4; do
    check "splits-local$m" "local[$m]" "$T/in/big.txt" -- --conf ember.files.maxPartitionBytes=64k
    check "dir-local$m" "local[$m]" "$T/in/dir"
done
check glob 'local[2]' "$T/in/g*.txt" "$T/in/g1.txt" "$T/in/g2.txt" "$T/in/g3.txt"
check default-master 'local[*]' "$T/in/notrail.txt"

# The output of a split input must not depend on the split size: compare with one split.
check onesplit 'local[2]' "$T/in/big.txt" -- --conf ember.files.maxPartitionBytes=64m

finish
