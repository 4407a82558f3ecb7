"""Dask peer for the terasort rows of bench/run.sh.

    /usr/bin/python3 bench/dask_terasort.py [--split-mb 64] INPUT... OUTDIR

A sample sort in dask.delayed, the way Hadoop's TeraSort does it: the client samples keys from
the inputs (evenly spaced records) and picks P-1 splitters on the 8-byte key prefix; P map
tasks each read a --split-mb range of whole 100-byte records and split it by splitter (numpy
searchsorted); P reduce tasks each concatenate their piece of every map's output, sort it by
the full 10-byte key (numpy lexsort on the big-endian 8-byte prefix and 2-byte suffix, stable)
and write OUTDIR/part-NNNNN. Concatenating the part files in name order gives the records
sorted. numpy does the per-record work, which is how Dask is used for bulk data (dask.array and
dask.dataframe are numpy underneath); a pure-Python bag of 100-byte records is far slower.
Cluster and memory reporting: dask_common.py.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dask_common  # noqa: E402

REC = 100


def keys(recs):
    """(hi, lo): big-endian key bytes 0..7 as uint64 and 8..9 as uint16, for an (n,100) array."""
    import numpy as np
    hi = recs[:, :8].copy().view(">u8").ravel().astype(np.uint64)
    lo = recs[:, 8:10].copy().view(">u2").ravel().astype(np.uint16)
    return hi, lo


def map_task(path, start, end, splitters):
    import numpy as np
    with open(path, "rb") as f:
        f.seek(start)
        buf = f.read(end - start)
    recs = np.frombuffer(buf, dtype=np.uint8).reshape(-1, REC)
    hi, _ = keys(recs)
    part = np.searchsorted(splitters, hi, side="right")
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(len(splitters) + 2))
    recs = recs[order]
    return [recs[bounds[j]:bounds[j + 1]] for j in range(len(splitters) + 1)]


def pick(pieces, j):
    return pieces[j]


def reduce_task(j, outdir, *pieces):
    import numpy as np
    recs = np.concatenate(pieces) if pieces else np.zeros((0, REC), np.uint8)
    hi, lo = keys(recs)
    recs = recs[np.lexsort((lo, hi))]
    with open(os.path.join(outdir, "part-%05d" % j), "wb") as f:
        f.write(recs.tobytes())
    return len(recs)


def sample_splitters(files, parts, per_part=100):
    import numpy as np
    sizes = [os.path.getsize(p) // REC for p in files]
    total = sum(sizes)
    want = min(total, parts * per_part)
    picks = sorted(set(int(i * total / want) for i in range(want))) if want else []
    his, f_i, base, handle = [], 0, 0, None
    for idx in picks:
        while idx >= base + sizes[f_i]:
            base += sizes[f_i]
            f_i += 1
            if handle:
                handle.close()
                handle = None
        if handle is None:
            handle = open(files[f_i], "rb")
        handle.seek((idx - base) * REC)
        his.append(int.from_bytes(handle.read(8), "big"))
    if handle:
        handle.close()
    his = np.sort(np.array(his, dtype=np.uint64))
    if len(his) == 0 or parts <= 1:
        return np.zeros(0, dtype=np.uint64)
    return his[[int(k * len(his) / parts) for k in range(1, parts)]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split-mb", type=float, default=64)
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    if len(a.paths) < 2:
        ap.error("need INPUT... OUTDIR")
    files, outdir = dask_common.list_inputs(a.paths[:-1]), a.paths[-1]
    os.makedirs(outdir, exist_ok=True)
    split = max(1, int(a.split_mb * (1 << 20)) // REC) * REC
    ranges = []
    for p in files:
        size = os.path.getsize(p)
        if size % REC:
            raise SystemExit("dask_terasort: %s is not whole 100-byte records" % p)
        ranges += [(p, s, min(s + split, size)) for s in range(0, size, split)]

    cluster, client = dask_common.start_cluster()
    from dask import delayed
    import dask

    t0 = time.monotonic()
    parts = max(1, len(ranges))
    splitters = sample_splitters(files, parts)
    maps = [delayed(map_task, pure=True)(p, s, e, splitters) for p, s, e in ranges]
    reduces = [delayed(reduce_task, pure=True)(j, outdir, *[delayed(pick)(m, j) for m in maps])
               for j in range(parts)]
    counts = dask.compute(*reduces)
    print("records %d parts %d" % (sum(counts), parts), flush=True)
    dask_common.finish(cluster, client, t0)


if __name__ == "__main__":
    main()
