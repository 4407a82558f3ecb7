#!/usr/bin/env bash
# End-to-end: examples/pagerank against reference.py's PageRank (the same algorithm as Spark's
# SparkPageRank, written with python dicts), ranks compared with relative tolerance 1e-9, the
# set of nodes exactly. Inputs: a generated power-law graph, and a hand-written one with
# duplicate edges, comments, blank lines, tabs, extra fields, self-loops and dangling nodes.
source "$(dirname "$0")/lib.sh"
need_file "$EX/pagerank"
need_file "$EMBER"
REF="$PY $EMBER_SRC/tests/e2e/reference.py"

check()
{
    local name=$1 master=$2 iters=$3 input=$4
    shift 4
    local args=()
    [ "$iters" != default ] && args=(--iterations "$iters")
    expect_ok "$name" "$EX/pagerank" --master "$master" "${args[@]}" "$@" "$input" \
        "$T/out-$name" || return
    [ "$iters" = default ] && iters=10
    if $REF pagerank "$T/out-$name" "$iters" "$input" >"$T/$name.diff" 2>&1; then
        pass "$name"
    else
        fail "$name: output differs from the reference"
        sed 's/^/    /' "$T/$name.diff" | head -20
    fi
}

printf '%s\n' '# a hand-written graph' '#   with comments' '' \
    'a b' 'a c' 'a b' 'a dangling' 'b c' 'c a' 'c c' 'd a' 'd	e' '  ' 'e a extra fields here' \
    'f g' 'g h' 'h' 'x y' 'y x' 'b a' 'b	c' '#not an edge z' 'long-node-name-é a' \
    | sed 's/^h$/h f/' >"$T/hand.txt"
printf 'p q\r\nq p\r\nq r\r\n' >"$T/crlf.txt"
"$EMBER" gen graph --nodes 300 --edges 3000 --seed 3 "$T/graph.txt" || { fail "gen"; finish; }

check hand 'local[2]' default "$T/hand.txt"
check hand-1iter 'local[1]' 1 "$T/hand.txt"
check crlf 'local[2]' 4 "$T/crlf.txt"
check graph-local2 'local[2]' default "$T/graph.txt"
check graph-local4 'local[4]' 5 "$T/graph.txt" --conf ember.files.maxPartitionBytes=8k
check zero-iterations 'local[2]' 0 "$T/hand.txt"

finish
