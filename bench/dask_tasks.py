"""Dask peer for the framework-overhead rows of bench/run.sh (empty job, 10,000 tiny tasks).

    /usr/bin/python3 bench/dask_tasks.py [--tasks 10000] [--jobs 20]

empty_job_ms: median wall time of --jobs one-task jobs (a no-op function submitted to the
scheduler and its result gathered: the smallest round trip a Dask job can make).
tasks_per_s: --tasks independent no-op tasks (client.map, pure=False, then gather) divided by
their wall time. Prints the same lines as Ember's bench/ember_tasks: "empty_job_ms X" and
"tasks_per_s Y", plus dask_common's start time and peak memory.
"""
import argparse
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dask_common  # noqa: E402


def noop(x=None):
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--jobs", type=int, default=20)
    a = ap.parse_args()
    cluster, client = dask_common.start_cluster()
    client.submit(noop, 0, pure=False).result()  # warm up both workers' imports
    t_all = time.monotonic()

    lat = []
    for i in range(a.jobs):
        t0 = time.monotonic()
        client.submit(noop, i, pure=False).result()
        lat.append(time.monotonic() - t0)
    print("empty_job_ms %.3f" % (statistics.median(lat) * 1e3), flush=True)

    t0 = time.monotonic()
    futures = client.map(noop, range(a.tasks), pure=False)
    client.gather(futures)
    dt = time.monotonic() - t0
    print("tasks_per_s %.1f" % (a.tasks / dt), flush=True)
    del futures
    dask_common.finish(cluster, client, t_all)


if __name__ == "__main__":
    main()
