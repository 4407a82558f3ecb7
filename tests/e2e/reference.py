#!/usr/bin/python3
"""Independent reference computations and output checkers for the end-to-end tests.

Each sub-command computes the expected result of an example straight from its input, reads
what the example wrote (part-* files plus _SUCCESS) and exits 0 when they agree, or prints
what differed and exits 1. Standard library only; nothing here calls Ember.

  reference.py wordcount OUTDIR INPUT...            INPUT: files or directories
  reference.py terasort OUTDIR INPUT...
  reference.py pagerank OUTDIR ITERATIONS INPUT...
  reference.py join OUTDIR LEFT RIGHT
  reference.py mkinputs-wordcount DIR               the tricky wordcount inputs
  reference.py mkrecords FILE                       hand-made terasort records
"""
import os
import random
import re
import sys
from collections import Counter, defaultdict

WS = re.compile(rb"[ \t\n\x0b\x0c\r]+")  # exactly the six ASCII whitespace bytes


def input_files(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p)
                          if not f.startswith((".", "_")))
        else:
            out.append(p)
    return out


def read_output(outdir):
    """The bytes of every part file in name order; fails if _SUCCESS is missing."""
    names = sorted(os.listdir(outdir))
    if "_SUCCESS" not in names:
        die(f"{outdir}: no _SUCCESS marker (files: {names[:10]})")
    parts = [n for n in names if n.startswith("part-")]
    others = [n for n in names if n not in parts and n != "_SUCCESS" and not n.startswith(".")]
    if others:
        die(f"{outdir}: unexpected files {others[:10]}")
    data = []
    for n in parts:
        with open(os.path.join(outdir, n), "rb") as f:
            data.append(f.read())
    return data


def output_lines(outdir):
    lines = []
    for i, chunk in enumerate(read_output(outdir)):
        if chunk and not chunk.endswith(b"\n"):
            die(f"{outdir}: part file {i} does not end with a newline")
        lines += chunk.split(b"\n")[:-1] if chunk else []
    return lines


def die(msg):
    print(msg)
    sys.exit(1)


def compare_maps(what, expected, got, fmt=repr):
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and got[k] != expected[k]]
    if not (missing or extra or wrong):
        return
    print(f"{what}: expected {len(expected)} keys, got {len(got)}; "
          f"{len(missing)} missing, {len(extra)} unexpected, {len(wrong)} wrong")
    for k in sorted(missing)[:5]:
        print(f"  missing {fmt(k)} (expected {expected[k]!r})")
    for k in sorted(extra)[:5]:
        print(f"  unexpected {fmt(k)} = {got[k]!r}")
    for k in sorted(wrong)[:5]:
        print(f"  {fmt(k)}: expected {expected[k]!r}, got {got[k]!r}")
    sys.exit(1)


# ---- wordcount ---------------------------------------------------------------------------

def cmd_wordcount(outdir, *inputs):
    expected = Counter()
    for path in input_files(inputs):
        with open(path, "rb") as f:
            expected.update(w for w in WS.split(f.read()) if w)
    got = {}
    for line in output_lines(outdir):
        word, tab, count = line.rpartition(b"\t")
        if not tab or not count.isdigit():
            die(f"malformed output line {line[:100]!r}")
        if word in got:
            die(f"word {word[:100]!r} appears twice in the output")
        got[word] = int(count)
    compare_maps("wordcount", dict(expected), got, lambda k: repr(k[:60]))


def cmd_mkinputs_wordcount(d):
    r = random.Random(7)
    os.makedirs(d, exist_ok=True)

    def put(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    vocab = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(1, 9)))
             for _ in range(5000)]
    put("empty.txt", b"")
    put("notrail.txt", b"hello world\nhello again world\nlast line without newline")
    put("crlf.txt", b"alpha beta\r\nbeta\r\n\r\ngamma alpha\r\nend\r")
    seps = [b" ", b" ", b" ", b"\t", b"  "]
    put("huge.txt", b"".join(r.choice(vocab) + r.choice(seps) for _ in range(900000))[:5 << 20]
        + b"\n")
    nonutf = [bytes([0xff, 0xfe, 0x41]), bytes([0xc3, 0x28]), "naïve".encode("latin-1"),
              "café".encode(), "日本語".encode(), bytes([0x80]), b"nul\x00inside", b"\x00",
              bytes(range(0x21, 0x7f)), bytes(range(0x80, 0x100))]
    put("binary.txt", b"\n".join(b" ".join(r.choice(nonutf + vocab[:20])
                                           for _ in range(r.randint(0, 12)))
                                 for _ in range(3000)) + b"\n")
    ws = [b" ", b"\t", b"\x0b", b"\x0c", b"\r", b"   ", b"\t\t", b" \x0b\x0c "]
    lines = []
    for _ in range(4000):
        k = r.randint(0, 8)
        lines.append(r.choice(ws) * r.randint(0, 1)
                     + b"".join(r.choice(vocab[:300]) + r.choice(ws) for _ in range(k))
                     + r.choice([b"", b"x", b"\x1c", b"\xa0"]))  # \x1c, \xa0: not whitespace
    put("ws.txt", b"\n".join(lines) + b"\n")
    # ~1 MB with lines of very different lengths, some longer than a 64k split.
    big = []
    for i in range(600):
        n = r.choice([1, 3, 10, 50, 200]) if i % 97 else 20000
        big.append(b" ".join(r.choice(vocab) for _ in range(n)))
    put("big.txt", b"\n".join(big) + b"\n")
    os.makedirs(os.path.join(d, "dir"), exist_ok=True)
    for name in ("a.txt", "b.txt", "c.txt"):
        put(os.path.join("dir", name),
            b"\n".join(b" ".join(r.choice(vocab) for _ in range(r.randint(1, 30)))
                       for _ in range(2000)) + b"\n")
    for name in ("g1.txt", "g2.txt", "g3.txt", "other.txt"):
        put(name, b"\n".join(b"%s %s" % (r.choice(vocab), name.encode())
                             for _ in range(500)) + b"\n")


# ---- terasort ----------------------------------------------------------------------------

def cmd_terasort(outdir, *inputs):
    records = []
    for path in input_files(inputs):
        with open(path, "rb") as f:
            data = f.read()
        records += [data[i:i + 100] for i in range(0, len(data), 100)]
    out = b"".join(read_output(outdir))
    if len(out) != 100 * len(records):
        die(f"terasort: output holds {len(out)} bytes, expected {100 * len(records)}")
    got = [out[i:i + 100] for i in range(0, len(out), 100)]
    for i in range(1, len(got)):
        if got[i - 1][:10] > got[i][:10]:
            die(f"terasort: record {i} key {got[i][:10].hex()} sorts before the key "
                f"{got[i - 1][:10].hex()} of record {i - 1}")
    expected = sorted(records)
    if [r[:10] for r in expected] != [r[:10] for r in got]:
        die("terasort: the key sequence differs from the sorted input keys")
    if sorted(got) != expected:
        c = Counter(records)
        c.subtract(Counter(got))
        bad = [(k, v) for k, v in c.items() if v][:3]
        die(f"terasort: records differ from the input (count differences: {bad})")


def cmd_mkrecords(path):
    """Records whose keys hit the edges of unsigned byte order, and equal keys."""
    r = random.Random(11)
    keys = [b"\x00" * 10, b"\xff" * 10, b"\x00" * 9 + b"\x01", b"\x7f" + b"\xff" * 9,
            b"\x80" + b"\x00" * 9, b"\xff" * 9 + b"\xfe", b"\x00\xff" * 5, b"\xff\x00" * 5]
    keys += [b"same-key!!"] * 5 + [b"\x00" * 10] * 3 + [b"\xff" * 10] * 2
    recs = []
    for i, k in enumerate(keys):
        body = bytes(r.randrange(256) for _ in range(90))
        recs.append(k + body[:2] + b"%032d" % i + body[34:])
    r.shuffle(recs)
    with open(path, "wb") as f:
        f.write(b"".join(recs))


# ---- pagerank ----------------------------------------------------------------------------

def cmd_pagerank(outdir, iterations, *inputs):
    links = defaultdict(set)
    for path in input_files(inputs):
        with open(path, "rb") as f:
            for line in f.read().split(b"\n"):
                if line.startswith(b"#"):
                    continue
                toks = [t for t in WS.split(line) if t]
                if not toks:
                    continue
                links[toks[0]].add(toks[1])
    ranks = {src: 1.0 for src in links}
    for _ in range(int(iterations)):
        contribs = defaultdict(float)
        for src, dsts in links.items():
            if src in ranks:
                for d in dsts:
                    contribs[d] += ranks[src] / len(dsts)
        ranks = {k: 0.15 + 0.85 * v for k, v in contribs.items()}
    got = {}
    for line in output_lines(outdir):
        node, tab, rank = line.rpartition(b"\t")
        if not tab:
            die(f"malformed output line {line[:100]!r}")
        if node in got:
            die(f"node {node!r} appears twice in the output")
        if not re.fullmatch(rb"-?[0-9.]+(e[-+][0-9]+)?", rank):
            die(f"rank {rank!r} of node {node!r} is not a %.15g number")
        got[node] = float(rank)
    compare_maps("pagerank nodes", {k: None for k in ranks}, {k: None for k in got})
    bad = [(k, ranks[k], got[k]) for k in ranks
           if abs(got[k] - ranks[k]) > 1e-9 * max(abs(ranks[k]), 1e-300)]
    if bad:
        print(f"pagerank: {len(bad)} of {len(ranks)} ranks off by more than 1e-9 (relative)")
        for k, want, have in bad[:5]:
            print(f"  {k!r}: expected {want!r}, got {have!r}")
        sys.exit(1)


# ---- join --------------------------------------------------------------------------------

def cmd_join(outdir, left, right):
    def load(path):
        d = defaultdict(list)
        for p in input_files([path]):
            with open(p, "rb") as f:
                data = f.read()
            lines = data.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                k, _, v = line.partition(b"\t")
                d[k].append(v)
        return d

    lhs, rhs = load(left), load(right)
    expected = Counter(k + b"\t" + v + b"\t" + w
                       for k in lhs if k in rhs for v in lhs[k] for w in rhs[k])
    got = Counter(output_lines(outdir))
    if got != expected:
        missing, extra = expected - got, got - expected
        print(f"join: expected {sum(expected.values())} lines, got {sum(got.values())}")
        for line in list(missing)[:5]:
            print(f"  missing {line[:100]!r} x{missing[line]}")
        for line in list(extra)[:5]:
            print(f"  unexpected {line[:100]!r} x{extra[line]}")
        sys.exit(1)


COMMANDS = {
    "wordcount": cmd_wordcount,
    "terasort": cmd_terasort,
    "pagerank": cmd_pagerank,
    "join": cmd_join,
    "mkinputs-wordcount": cmd_mkinputs_wordcount,
    "mkrecords": cmd_mkrecords,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
