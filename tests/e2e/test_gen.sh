#!/usr/bin/env bash
# End-to-end: `ember gen`. Same seed, same bytes (and another seed, other bytes); formats
# checked by python: terasort records are 100 bytes with gensort's fixed fields and row ids,
# split files concatenate to the single file; text lines have 25..108 words from exactly 1000
# distinct words and reach the requested size; text-hc follows a Zipf law; graph lines are
# "src dst" below --nodes after '#' comments, with a skewed degree distribution; bad arguments
# exit 2, an unwritable output 1.
source "$(dirname "$0")/lib.sh"
need_file "$EMBER"

# same NAME ARGS...: runs gen twice with the same arguments and compares the bytes.
same()
{
    local name=$1
    shift
    if "$EMBER" gen "$@" "$T/$name.1" && "$EMBER" gen "$@" "$T/$name.2" &&
        cmp -s "$T/$name.1" "$T/$name.2"; then
        pass "deterministic-$name"
    else
        fail "deterministic-$name: two runs with the same seed differ (or failed)"
    fi
}

# pycheck NAME PYTHON_CODE ARGS...: the code exits non-zero (printing why) on a bad format.
pycheck()
{
    local name=$1 code=$2
    shift 2
    if $PY -c "$code" "$@" >"$T/$name.py.out" 2>&1; then
        pass "$name"
    else
        fail "$name"
        sed 's/^/    /' "$T/$name.py.out" | head -10
    fi
}

same text text --size 300k --seed 7
same text-hc text-hc --size 300k --seed 7
same terasort terasort --records 3000 --seed 7
same graph graph --nodes 1000 --edges 5000 --seed 7
"$EMBER" gen text --size 300k --seed 8 "$T/text.other"
if cmp -s "$T/text.1" "$T/text.other"; then fail "seed-matters: seeds 7 and 8 gave the same text"
else pass seed-matters; fi

pycheck terasort-format '
import sys
data = open(sys.argv[1], "rb").read()
assert len(data) == 100 * 3000, f"size {len(data)} != 300000"
keys = set()
for i in range(3000):
    r = data[100 * i:100 * i + 100]
    assert r[10:12] == b"\x00\x11", f"record {i}: bytes 10..11 {r[10:12]!r}"
    assert r[12:44] == b"%032X" % i, f"record {i}: row id {r[12:44]!r}"
    assert r[44:48] == b"\x88\x99\xaa\xbb" and r[96:100] == b"\xcc\xdd\xee\xff", f"record {i}"
    keys.add(r[:10])
assert len(keys) > 2990, f"only {len(keys)} distinct keys: not random"
' "$T/terasort.1"

"$EMBER" gen terasort --records 3000 --seed 7 --files 4 "$T/tera-split" &&
    [ "$(ls "$T/tera-split" | tr '\n' ' ')" = "part-00000 part-00001 part-00002 part-00003 " ] &&
    cat "$T"/tera-split/part-* | cmp -s - "$T/terasort.1" && pass terasort-files ||
    fail "terasort-files: 4 part files do not concatenate to the single-file output"

pycheck text-format '
import sys, os
data = open(sys.argv[1], "rb").read()
assert len(data) >= 300 * 1024, f"size {len(data)} below 300k"
assert data.endswith(b"\n")
lines = data.split(b"\n")[:-1]
assert len(data) - len(lines[-1]) - 1 < 300 * 1024, "wrote whole lines past the size"
vocab = set()
for n, line in enumerate(lines):
    words = line.split(b" ")
    assert 25 <= len(words) <= 108, f"line {n}: {len(words)} words"
    assert all(w.isalpha() and w.islower() for w in words), f"line {n}: {line[:80]!r}"
    vocab.update(words)
assert len(vocab) == 1000, f"{len(vocab)} distinct words, expected 1000"
' "$T/text.1"

"$EMBER" gen text --size 1m --files 3 --seed 2 "$T/text-split"
pycheck text-files '
import sys, os
d = sys.argv[1]
names = sorted(os.listdir(d))
assert names == ["part-00000", "part-00001", "part-00002"], names
sizes = [os.path.getsize(os.path.join(d, n)) for n in names]
assert all(s >= (1 << 20) // 3 for s in sizes) and sum(sizes) < (1 << 20) + 3 * 1200, sizes
assert len(set(open(os.path.join(d, n), "rb").read() for n in names)) == 3, "files are equal"
' "$T/text-split"

"$EMBER" gen text-hc --size 4m --seed 1 "$T/hc.txt"
pycheck text-hc-zipf '
import sys
from collections import Counter
c = Counter(open(sys.argv[1], "rb").read().split())
top = [n for _, n in c.most_common(10)]
assert len(c) > 50000, f"only {len(c)} distinct words"
assert 1.8 < top[0] / top[1] < 2.2 and 2.7 < top[0] / top[2] < 3.3, f"not Zipf(1): {top}"
' "$T/hc.txt"

pycheck graph-format '
import sys
from collections import Counter
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b""
lines = lines[:-1]
comments = [l for l in lines if l.startswith(b"#")]
edges = [l for l in lines if not l.startswith(b"#")]
assert comments and lines[:len(comments)] == comments, "comments are not at the top"
assert len(edges) == 5000, f"{len(edges)} edges"
deg = Counter()
for l in edges:
    s, d = l.split(b" ")
    assert 0 <= int(s) < 1000 and 0 <= int(d) < 1000, l
    deg[int(d)] += 1
assert deg.most_common(1)[0][1] > 10 * 5000 / 1000, f"max in-degree {deg.most_common(1)}"
' "$T/graph.1"

# Bad arguments.
bad()
{
    local name=$1 want=$2
    shift 2
    "$EMBER" gen "$@" >"$T/$name.out" 2>"$T/$name.err"
    local rc=$?
    if [ "$rc" -eq "$want" ] && [ -s "$T/$name.err" ]; then pass "$name"
    else fail "$name: exit status $rc (expected $want), stderr: $(head -c 200 "$T/$name.err")"; fi
}
bad no-kind 2
bad unknown-kind 2 pictures --size 1k "$T/x"
bad missing-size 2 text "$T/x"
bad bad-size 2 text --size 10x "$T/x"
bad negative-records 2 terasort --records -5 "$T/x"
bad missing-out 2 terasort --records 5
bad missing-edges 2 graph --nodes 10 "$T/x"
bad zero-files 2 text --size 1k --files 0 "$T/x"
bad unknown-option 2 text --size 1k --colour blue "$T/x"
bad unwritable 1 text --size 1k "$T/no/such/dir/file"
if "$EMBER" gen --help | grep -q "ember gen terasort"; then pass help; else fail help; fi

finish
