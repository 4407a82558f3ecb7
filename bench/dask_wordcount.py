"""Dask peer for the word-count rows of bench/run.sh.

    /usr/bin/python3 bench/dask_wordcount.py [--split-mb 32] INPUT... OUTFILE

A Dask bag over byte ranges (--split-mb each, cut at word boundaries the way Hadoop cuts
lines: a range owns every word that starts inside it); each partition counts its words with
collections.Counter over bytes.split() -- which splits on exactly the six ASCII whitespace
bytes, as Ember and the C ceiling do -- and the Counters are merged in a tree reduction
(Bag.reduction, split_every=8): the "per-partition Counter + merge" idiom, the faster of the
two idioms in /work/shared/reference/performance.md. The client writes "word<TAB>count" lines
to OUTFILE. Cluster and memory reporting: dask_common.py.
"""
import argparse
import os
import sys
import time
from collections import Counter

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dask_common  # noqa: E402

WS = b" \t\n\v\f\r"


def count_range(rng):
    path, start, end = rng
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            data = f.read(end - start + 1)
            if data and data[0] not in WS:
                # The byte before the range is inside a word: that word belongs to the
                # previous range, so skip to the first whitespace.
                i = 1
                while i < len(data) and data[i] not in WS:
                    i += 1
                data = data[i:]
            else:
                data = data[1:]
        else:
            data = f.read(end)
        # Finish the word that straddles the end of the range.
        if data and data[-1] not in WS:
            tail = []
            while True:
                block = f.read(1 << 16)
                if not block:
                    break
                cut = next((i for i, b in enumerate(block) if b in WS), -1)
                if cut >= 0:
                    tail.append(block[:cut])
                    break
                tail.append(block)
            data += b"".join(tail)
    return Counter(data.split())


def merge(counters):
    it = iter(counters)
    total = Counter(next(it, Counter()))
    for c in it:
        total.update(c)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split-mb", type=float, default=32)
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    if len(a.paths) < 2:
        ap.error("need INPUT... OUTFILE")
    files, out = dask_common.list_inputs(a.paths[:-1]), a.paths[-1]
    split = max(1, int(a.split_mb * (1 << 20)))
    ranges = []
    for p in files:
        size = os.path.getsize(p)
        ranges += [(p, s, min(s + split, size)) for s in range(0, size, split)]

    cluster, client = dask_common.start_cluster()
    import dask.bag as db

    t0 = time.monotonic()
    bag = db.from_sequence(ranges, npartitions=max(1, len(ranges))).map(count_range)
    counts = bag.reduction(merge, merge, split_every=8).compute()
    with open(out, "wb") as f:
        f.write(b"".join(b"%s\t%d\n" % kv for kv in counts.items()))
    print("words %d distinct %d" % (sum(counts.values()), len(counts)), flush=True)
    dask_common.finish(cluster, client, t0)


if __name__ == "__main__":
    main()
