#!/usr/bin/env bash
# End-to-end: every example on local-cluster[2,1,1024] (a real master and two real worker
# processes started by the driver, executors as processes, shuffle blocks fetched between
# them) gives the reference's answer and the same output as local[2]; plus spill across
# processes and a multi-core executor layout.
source "$(dirname "$0")/lib.sh"
need_file "$EMBER"
REF="$PY $EMBER_SRC/tests/e2e/reference.py"
LC='local-cluster[2,1,1024]'

# same NAME DIR_A DIR_B: the two outputs hold the same lines (order inside a part is free).
same()
{
    if cmp -s <(cat "$2"/part-* | sort) <(cat "$3"/part-* | sort); then
        pass "$1: same output as local[2]"
    else
        fail "$1: output differs from local[2]"
    fi
}

# wordcount
$REF mkinputs-wordcount "$T/in" ||
    { fail "making inputs"; finish; }
for m in "$LC" 'local[2]'; do
    tag=${m%%[*}
    expect_ok "wordcount-$tag" "$EX/wordcount" --master "$m" \
        --conf ember.files.maxPartitionBytes=64k "$T/in/big.txt" "$T/wc-$tag" &&
        { $REF wordcount "$T/wc-$tag" "$T/in/big.txt" >"$T/wc-$tag.diff" 2>&1 &&
            pass "wordcount on $m matches the reference" ||
            fail "wordcount on $m differs from the reference"; }
done
same wordcount "$T/wc-local-cluster" "$T/wc-local"

# terasort (range partitioning: the sampling job, binary output)
"$EMBER" gen terasort --records 50000 --seed 5 --files 3 "$T/ts" || fail "gen terasort"
for m in "$LC" 'local[2]'; do
    tag=${m%%[*}
    expect_ok "terasort-$tag" "$EX/terasort" --master "$m" "$T/ts" "$T/ts-$tag" &&
        { $REF terasort "$T/ts-$tag" "$T/ts" >"$T/ts-$tag.diff" 2>&1 &&
            pass "terasort on $m matches the reference" ||
            fail "terasort on $m differs from the reference"; }
done
cmp -s <(cat "$T"/ts-local-cluster/part-*) <(cat "$T"/ts-local/part-*) &&
    pass "terasort: byte-identical to local[2]" || fail "terasort: bytes differ from local[2]"

# pagerank (iterations: many shuffles, a cached RDD)
"$EMBER" gen graph --nodes 2000 --edges 20000 --seed 3 "$T/graph.txt" || fail "gen graph"
for m in "$LC" 'local[2]'; do
    tag=${m%%[*}
    expect_ok "pagerank-$tag" "$EX/pagerank" --master "$m" --iterations 5 "$T/graph.txt" \
        "$T/pr-$tag" &&
        { $REF pagerank "$T/pr-$tag" 5 "$T/graph.txt" >"$T/pr-$tag.diff" 2>&1 &&
            pass "pagerank on $m matches the reference" ||
            fail "pagerank on $m differs from the reference"; }
done

# join
$PY - "$T" <<'PYEOF'
import random, sys
t = sys.argv[1]
r = random.Random(11)
with open(t + "/left.txt", "w") as f:
    for i in range(20000):
        f.write("k%d\tL%d\n" % (r.randrange(3000), i))
with open(t + "/right.txt", "w") as f:
    for i in range(5000):
        f.write("k%d\tR%d\n" % (r.randrange(3000), i))
PYEOF
for m in "$LC" 'local[2]'; do
    tag=${m%%[*}
    expect_ok "join-$tag" "$EX/join" --master "$m" "$T/left.txt" "$T/right.txt" "$T/jn-$tag" &&
        { $REF join "$T/jn-$tag" "$T/left.txt" "$T/right.txt" >"$T/jn-$tag.diff" 2>&1 &&
            pass "join on $m matches the reference" ||
            fail "join on $m differs from the reference"; }
done
same join "$T/jn-local-cluster" "$T/jn-local"

# Spill on both sides of a cross-process shuffle, and executors of two cores each.
expect_ok spill "$EX/terasort" --master "$LC" --conf ember.executor.memory=8m "$T/ts" "$T/ts-spill" &&
    { $REF terasort "$T/ts-spill" "$T/ts" >/dev/null 2>&1 && pass "terasort with 8m executors" ||
        fail "terasort with 8m executors differs from the reference"; }
expect_ok twocores "$EX/wordcount" --master 'local-cluster[2,2,512]' "$T/in/big.txt" "$T/wc-2c" &&
    { $REF wordcount "$T/wc-2c" "$T/in/big.txt" >/dev/null 2>&1 &&
        pass "wordcount on local-cluster[2,2,512]" || fail "wordcount on local-cluster[2,2,512]"; }

# Bad masters are clear errors.
run badlc "$EX/wordcount" --master 'local-cluster[0,1,1024]' "$T/in/big.txt" "$T/bad1"
[ "$rc" -ne 0 ] && grep -q "local-cluster" "$T/badlc.err" && [ ! -e "$T/bad1" ] &&
    pass "local-cluster[0,...] refused" || { fail "local-cluster[0,...] not refused clearly"; show badlc; }

finish
