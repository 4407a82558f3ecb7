#!/usr/bin/env bash
# End-to-end: examples/join against reference.py's inner join (python dicts of lists):
# keys with several matches on both sides, values holding tabs, empty values and an empty key,
# non-ASCII bytes, keys on one side only, a directory input.
source "$(dirname "$0")/lib.sh"
need_file "$EX/join"
REF="$PY $EMBER_SRC/tests/e2e/reference.py"

check()
{
    local name=$1 master=$2 left=$3 right=$4
    shift 4
    expect_ok "$name" "$EX/join" --master "$master" "$@" "$left" "$right" "$T/out-$name" ||
        return
    if $REF join "$T/out-$name" "$left" "$right" >"$T/$name.diff" 2>&1; then
        pass "$name"
    else
        fail "$name: output differs from the reference"
        sed 's/^/    /' "$T/$name.diff" | head -20
    fi
}

printf '%b' 'k1\tl1\nk1\tl2\nk2\tvalue\twith\ttabs\nk3\t\n\tempty key left\nonly-left\tx\n' \
    'k1\tl3\nk4\t\t\n' 'caf\xc3\xa9\tleft-utf8\n' >"$T/left.txt"
printf '%b' 'k1\tr1\nk1\tr2\nk2\t\nk3\tr3\n\tempty key right\nonly-right\ty\n' \
    'k4\tr4\tr4b\ncaf\xc3\xa9\tright-utf8\nk1\tr3\r\n' >"$T/right.txt"
check hand 'local[2]' "$T/left.txt" "$T/right.txt"
check hand-local1 'local[1]' "$T/left.txt" "$T/right.txt"

# Bigger: many keys, skewed multiplicities, in a directory of several files.
$PY - "$T" <<'PYEOF'
import os, random, sys
r = random.Random(5)
t = sys.argv[1]
os.makedirs(f"{t}/bigleft", exist_ok=True)
for i in range(3):
    with open(f"{t}/bigleft/part{i}.txt", "w") as f:
        for _ in range(4000):
            k = int(r.paretovariate(1.2)) % 3000
            f.write(f"key{k}\tleft{r.randrange(10**6)}\n")
with open(f"{t}/bigright.txt", "w") as f:
    for _ in range(3000):
        k = r.randrange(4000)
        f.write(f"key{k}\tright\t{r.randrange(10**6)}\n")
PYEOF
check big-local4 'local[4]' "$T/bigleft" "$T/bigright.txt" --conf ember.files.maxPartitionBytes=16k

finish
