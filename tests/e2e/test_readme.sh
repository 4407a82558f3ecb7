#!/usr/bin/env bash
# The README's driver program is real: extract it, build it against the freshly built
# libember.a, run it on the bundled sample text and compare with an independent Python count
# of its (count, word) top ten.
. "$(dirname "$0")/lib.sh"

$PY - "$EMBER_SRC/README.md" "$T/hello.c" <<'PYEOF'
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"```c\n(.*?)```", s, re.S)
open(sys.argv[2], "w").write(m.group(1))
PYEOF
if cc ${EMBER_CFLAGS:-} -std=c11 -Wall -Wextra -Wno-unused-parameter -Werror -I"$EMBER_SRC/include" "$T/hello.c" \
    "$EMBER_BUILD/libember.a" $(pkg-config --libs liblz4 libzstd libxxhash libsodium libuv) -lpthread -lm \
    -o "$T/hello" 2>"$T/cc.err"; then
    pass "README program compiles"
else
    fail "README program compiles"; show cc
fi

run hello "$T/hello" "$EMBER_SRC/data/sample.txt"
$PY - "$EMBER_SRC/data/sample.txt" >"$T/expected" <<'PYEOF'
import sys, collections
counts = collections.Counter()
for line in open(sys.argv[1], "rb").read().split(b"\n"):
    counts.update(w for w in line.split(b" ") if w)
top = sorted(((c, w) for w, c in counts.items()), reverse=True)[:10]
for c, w in top:
    sys.stdout.buffer.write(b"(%d,%s)\n" % (c, w))
PYEOF
if [ $rc -eq 0 ] && cmp -s "$T/hello.out" "$T/expected"; then
    pass "README program prints the top ten words"
else
    fail "README program prints the top ten words (rc=$rc)"; show hello
    diff "$T/hello.out" "$T/expected" | head -5
fi
finish
