"""Shared by bench/dask_*.py: start the Dask peer the way bench/run.sh measures it, and report
the whole cluster's peak memory.

The cluster is LocalCluster(n_workers=2, threads_per_worker=1, processes=True): two worker
processes of one thread each (each under its own nanny process), the scheduler inside this
process. Peak RSS of the cluster is the SUM of every process's own peak (getrusage
ru_maxrss, i.e. the kernel's VmHWM): this process (client + scheduler), both nannies and both
workers. The processes do not all peak at the same instant, so the sum is an upper bound on
the cluster's simultaneous footprint -- the conservative reading for a peer.

Each script prints machine-readable lines on stdout that bench/run.sh parses:
  dask_start_s X        time to start the cluster and connect
  dask_compute_s X      time of the job itself (after start, before shutdown)
  peak_rss_kib N        the sum described above
Run with Debian's /usr/bin/python3 (python3-distributed, python3-dask, python3-numpy).
"""
import logging
import os
import resource
import time
import warnings


def _maxrss_kib():
    import resource as r
    return r.getrusage(r.RUSAGE_SELF).ru_maxrss


def start_cluster(workers=2):
    warnings.filterwarnings("ignore")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    from dask.distributed import Client, LocalCluster

    t0 = time.monotonic()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    client.wait_for_workers(workers)
    print("dask_start_s %.3f" % (time.monotonic() - t0), flush=True)
    return cluster, client


def cluster_peak_rss_kib(client):
    """Sum of ru_maxrss (KiB) of this process, every worker and every nanny."""
    total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total += sum(client.run(_maxrss_kib).values())
    try:
        total += sum(client.run(_maxrss_kib, nanny=True).values())
    except Exception:  # no nannies (processes=False): nothing to add
        pass
    return total


def finish(cluster, client, t_compute0):
    print("dask_compute_s %.3f" % (time.monotonic() - t_compute0), flush=True)
    print("peak_rss_kib %d" % cluster_peak_rss_kib(client), flush=True)
    client.close()
    cluster.close()


def list_inputs(paths):
    """A file, or a directory's regular files not starting with '.' or '_', in name order."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [os.path.join(p, n) for n in sorted(os.listdir(p))
                      if n[0] not in "._" and os.path.isfile(os.path.join(p, n))]
        else:
            files.append(p)
    if not files:
        raise SystemExit("dask bench: no input files in %s" % " ".join(paths))
    return files
