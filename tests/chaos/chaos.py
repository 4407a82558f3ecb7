#!/usr/bin/python3
"""The chaos suite (`make chaos`; docs/chaos.md): Jepsen-style fault injection into real Ember
clusters running the real examples, judged by their OUTPUT.

Each run: a fresh cluster, one example (wordcount, terasort, pagerank, join) on it, one fault
injected at a random point of the job, then the verdict. The output must be byte-identical to
the fault-free output (part by part; lines sorted inside a part where the example leaves their
order free; terasort's bytes as they are) and the driver must exit 0 within the run's bound.
The fault-free output is itself checked against tests/e2e/reference.py, an independent Python
computation, so no run is ever compared with Ember's own unverified answer.

Clusters:
  lc  local-cluster[2,1,1024]: the driver starts a master and two workers (1 core each).
  sa  standalone on loopback: `ember master` (recoveryMode FILESYSTEM) + two `ember worker`
      (1 core, 1g each), started by this script; the driver in client mode.
  ns  the same standalone cluster over network namespaces (tests/e2e/netns.sh): master and
      driver in "m", a worker in "w1" and one in "w2" (root only; skipped, with the reason,
      otherwise).

Fault kinds (which clusters they run on is in FAULTS below):
  kill-executor    kill -9 of one executor process
  kill-worker      kill -9 of one `ember worker` (only the worker is signalled)
  stop-executor    SIGSTOP of one executor for HOLD seconds (2 x ember.network.timeout), then
                   SIGCONT
  corrupt-shuffle  bytes of one finished map output data file flipped (shuffle_S_M.data with
                   its index in place, under an executor's blockmgr directory)
  fill-disk        one worker's work directory (binaries, executor dirs, shuffle files) is a
                   tmpfs mounted by the run; at the fault it is filled to the last byte (root)
  restart-master   kill -9 of `ember master`, restarted on the same port with the same
                   ember.deploy.recoveryDirectory after a pause
  link-down        `ip link set eth0 down` in one worker's namespace, up again after HOLD
  drop-packets     nft `numgen random mod 100 < P drop` on eth0 of one worker's namespace,
                   both directions, until the job ends
  delay            one worker's outgoing TCP connections go through chaos_proxy (an nft
                   `redirect` in its namespace, set before the cluster starts); at the fault
                   the proxy adds latency + jitter (and sometimes a bandwidth cap) both ways
  conn-reset       through the same proxy: every open connection of that worker is reset and
                   a share of its new connections too, for 5 s

A random point of the job: the fault-free run of the same (cluster, example) is timed first
(D), then the fault time is drawn uniformly in [0.2 s, 0.8 D] from the run's seed. A fault
whose target does not exist yet (no executor, no finished map output) waits for it; a job that
ends before any target appeared is MISSED (neither passed nor failed), and is run once more with
the window taken from its own duration.

Bound: 30 s + 3 x D, plus HOLD for stop-executor and link-down. A driver still running at the
bound is killed: verdict HANG.

Seeds: one integer decides a whole run (cluster, example, fault, fault time, target and the
fault's parameters), so `CHAOS_SEED=S make chaos` replays exactly the run printed with seed S.

Modes (environment or options):
  (default)         every (cluster x fault kind x example) once, a seed printed per run
  CHAOS_RUNS=N      N runs of a seeded random schedule (CHAOS_SCHEDULE=S fixes its seed)
  CHAOS_SEED=S      exactly the run of seed S
  CHAOS_SHORT=1     the CI form: one example per fault kind (plus the namespace kinds as root)
  CHAOS_ONLY=...    filter: comma-separated cluster names, fault kinds or examples
  CHAOS_KEEP=1      keep every run's directory, not only failed ones
  CHAOS_DIR=D       where runs go (default /tmp/ember-chaos)

Per run it prints seed, cluster, example, fault (and target), fault time, job time, recovery
time (fault to job end), bound, verdict; at the end a table per fault kind. A failed run keeps
its directory (driver, daemon and executor logs, output, fault log) and prints its path and
what the driver said. Nothing is left behind: processes of the run (found by an environment
marker, and executors by their directory), tmpfs mounts, namespaces (nft rules live only
inside them); stale ones of a dead earlier invocation are removed at start. Exit status 0 when
no run failed.

Standard library only; never calls Ember to compute an expected answer.
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
EXAMPLES = ["wordcount", "terasort", "pagerank", "join"]
CLUSTERS = ["lc", "sa", "ns"]
CLUSTER_NAMES = {"lc": "local-cluster[2,1,1024]", "sa": "standalone (loopback)",
                 "ns": "standalone (network namespaces)"}
NETWORK_TIMEOUT_S = 4
HOLD_S = 2 * NETWORK_TIMEOUT_S
PROXY_MARK = "0x4348"
PROXY_PORT = 15001
TMPFS_SIZE = "256m"

# fault kind -> clusters it runs on. Order matters: it numbers the cases that seeds decode to.
FAULTS = {
    "kill-executor": ["lc", "sa", "ns"],
    "kill-worker": ["lc", "sa", "ns"],
    "stop-executor": ["lc", "sa", "ns"],
    "corrupt-shuffle": ["lc", "sa", "ns"],
    "fill-disk": ["sa", "ns"],
    "restart-master": ["sa", "ns"],
    "link-down": ["ns"],
    "drop-packets": ["ns"],
    "delay": ["ns"],
    "conn-reset": ["ns"],
}
NEEDS_ROOT = {"fill-disk"}  # besides everything on ns
CASES = [(c, e, f) for c in CLUSTERS for f in FAULTS if c in FAULTS[f] for e in EXAMPLES]
# CI: one example per fault kind, the examples rotated; ns kinds only as root.
SHORT = [("lc", "wordcount", "kill-executor"), ("sa", "terasort", "kill-worker"),
         ("lc", "join", "stop-executor"), ("sa", "pagerank", "corrupt-shuffle"),
         ("sa", "wordcount", "fill-disk"), ("sa", "join", "restart-master"),
         ("ns", "terasort", "link-down"), ("ns", "pagerank", "drop-packets"),
         ("ns", "wordcount", "delay"), ("ns", "join", "conn-reset")]

# Options of every driver (and, through it or their command lines, of the daemons).
CONF = [
    "ember.network.timeout=%ds" % NETWORK_TIMEOUT_S,
    "ember.executor.heartbeatInterval=500ms",
    "ember.worker.timeout=%ds" % NETWORK_TIMEOUT_S,
    "ember.excludeOnFailure.enabled=true",
    "ember.default.parallelism=8",
    "ember.files.maxPartitionBytes=8m",
    "ember.ui.enabled=false",
    "ember.ui.showConsoleProgress=false",
]
DAEMON_CONF = ["ember.worker.timeout=%ds" % NETWORK_TIMEOUT_S]

OWNER = os.getpid()
MARK_OWNER = "CHAOS_OWNER"  # environment marker of every process this script starts
MARK_RUN = "CHAOS_RUN"


def log(msg=""):
    print(msg, flush=True)


def sh(cmd, check=True, **kw):
    """Runs a command (list), returns CompletedProcess; raises with its stderr when check."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"'{' '.join(cmd)}' failed ({r.returncode}): {r.stderr.strip()}")
    return r


# ---- processes -----------------------------------------------------------------------------------

def environ_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        k, eq, v = item.partition(b"=")
        if eq:
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def proc_state(pid):
    """The state letter of /proc/PID/stat (R, S, T, Z, ...) or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    s = proc_state(pid)
    return s is not None and s not in ("Z", "X")


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def procs_under(prefix):
    """Processes started for the runs whose directory starts with PREFIX (a run directory, or
    ROOT/run-<owner>- for all runs of one invocation): the marker of this script, or an executor
    whose directory is there (workers give executors a fresh environment without our marker)."""
    out = []
    for pid in all_pids():
        if pid == OWNER:
            continue
        env = environ_of(pid)
        if not env:
            continue
        run = env.get(MARK_RUN, "")
        xdir = env.get("EMBER_EXECUTOR_DIR", "")
        if (run and (run + "/").startswith(prefix)) or (xdir and xdir.startswith(prefix)):
            if alive(pid):
                out.append(pid)
    return out


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def kill_and_wait(prefix, seconds=10):
    """SIGKILLs every process of procs_under(PREFIX) until none is left; returns the pids that
    still live after SECONDS (empty when all are gone)."""
    deadline = time.monotonic() + seconds
    while True:
        pids = procs_under(prefix)
        if not pids or time.monotonic() > deadline:
            return pids
        kill_all(pids)
        time.sleep(0.05)


def executors_of(run_dir):
    """Live executor processes of a run: [(pid, executor id, executor dir)], by executor id."""
    out = []
    for pid in all_pids():
        env = environ_of(pid)
        if not env or env.get("EMBER_EXECUTOR_MODE") != "1":
            continue
        xdir = env.get("EMBER_EXECUTOR_DIR", "")
        if xdir.startswith(run_dir + "/") and alive(pid) and proc_state(pid) != "T":
            out.append((pid, int(env.get("EMBER_EXECUTOR_ID", "-1")), xdir))
    return sorted(out, key=lambda t: (t[1], t[0]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_line(path, regex, seconds, proc=None):
    deadline = time.monotonic() + seconds
    rx = re.compile(regex)
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as f:
                if any(rx.search(line) for line in f):
                    return True
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in f.readlines()[-n:]]
    except OSError:
        return []


# ---- network namespaces (tests/e2e/netns.sh) ----------------------------------------------------

NETNS_SH = os.path.join(SRC, "tests/e2e/netns.sh")


def netns_unavailable():
    """None when namespaces work here, else why not."""
    r = subprocess.run(["bash", "-c", f". '{NETNS_SH}' && netns_unavailable"],
                       capture_output=True, text=True,
                       env=dict(os.environ, NETNS_PREFIX=f"chaos-{OWNER}"))
    return None if r.returncode == 0 else (r.stdout.strip() or r.stderr.strip() or "unknown")


class Netns:
    """The four namespaces of one run: chaos-<owner>-<n>-{br,m,w1,w2}."""

    def __init__(self, n):
        self.prefix = f"chaos-{OWNER}-{n}"
        self.net = "10.214.%d" % (n % 250 + 1)
        self.ns = {r: f"{self.prefix}-{r}" for r in ("br", "m", "w1", "w2")}
        self.ip = {"m": self.net + ".1", "w1": self.net + ".2", "w2": self.net + ".3"}

    def setup(self):
        r = subprocess.run(["bash", "-c", f". '{NETNS_SH}' && netns_setup"],
                           capture_output=True, text=True,
                           env=dict(os.environ, NETNS_PREFIX=self.prefix, NETNS_NET=self.net))
        if r.returncode != 0:
            self.teardown()
            raise RuntimeError(f"netns setup failed: {r.stdout.strip()} {r.stderr.strip()}")

    def exec(self, role):
        return ["ip", "netns", "exec", self.ns[role]]

    def teardown(self):
        for name in self.ns.values():
            remove_namespace(name)


def remove_namespace(name):
    if not os.path.exists(f"/run/netns/{name}"):
        return
    for _ in range(100):
        pids = sh(["ip", "netns", "pids", name], check=False).stdout.split()
        if not pids:
            break
        kill_all(int(p) for p in pids)
        time.sleep(0.05)
    sh(["ip", "netns", "del", name], check=False)


# ---- inputs and outputs -------------------------------------------------------------------------

class Inputs:
    """The examples' inputs, made once per invocation (same seeds, same bytes every time)."""

    def __init__(self, root, ember):
        self.dir = root
        os.makedirs(root, exist_ok=True)
        gen = [ember, "gen"]
        sh(gen + ["text-hc", "--size", "100m", "--seed", "1", "--files", "8", f"{root}/text"])
        sh(gen + ["terasort", "--records", "3000000", "--seed", "5", "--files", "8",
                  f"{root}/ts"])
        sh(gen + ["graph", "--nodes", "100000", "--edges", "1000000", "--seed", "3",
                  f"{root}/graph.txt"])
        r = random.Random(11)
        with open(f"{root}/left.txt", "w") as f:
            f.writelines("k%d\tL%d\n" % (r.randrange(600000), i) for i in range(3000000))
        with open(f"{root}/right.txt", "w") as f:
            f.writelines("k%d\tR%d\n" % (r.randrange(600000), i) for i in range(800000))

    def args(self, example, out):
        """(program arguments, reference.py arguments) of an example writing to OUT."""
        d = self.dir
        if example == "wordcount":
            return [f"{d}/text", out], ["wordcount", out, f"{d}/text"]
        if example == "terasort":
            return [f"{d}/ts", out], ["terasort", out, f"{d}/ts"]
        if example == "pagerank":
            return (["--iterations", "8", f"{d}/graph.txt", out],
                    ["pagerank", out, "8", f"{d}/graph.txt"])
        return ([f"{d}/left.txt", f"{d}/right.txt", out],
                ["join", out, f"{d}/left.txt", f"{d}/right.txt"])


def output_digest(example, out):
    """{part name: sha256} of an output directory, and the names of other files. Lines are
    sorted inside each part (their order is free) except for terasort, compared as bytes."""
    names = sorted(os.listdir(out))
    parts = [n for n in names if n.startswith("part-")]
    other = [n for n in names if n not in parts]
    digests = {}
    for p in parts:
        path = os.path.join(out, p)
        h = hashlib.sha256()
        if example == "terasort":
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            r = subprocess.run(["sort", "-S", "25%", path], capture_output=True,
                               env=dict(os.environ, LC_ALL="C"), check=True)
            h.update(r.stdout)
        digests[p] = h.hexdigest()
    return digests, other


def describe_difference(example, got_dir, ref_dir, got, ref):
    """A few lines saying how an output differs from the reference output."""
    lines = []
    missing = sorted(set(ref) - set(got))
    extra = sorted(set(got) - set(ref))
    if missing:
        lines.append(f"missing part files: {missing[:8]}")
    if extra:
        lines.append(f"extra part files: {extra[:8]}")
    for p in sorted(set(got) & set(ref)):
        if got[p] == ref[p]:
            continue
        with open(os.path.join(got_dir, p), "rb") as f:
            a = f.read()
        with open(os.path.join(ref_dir, p), "rb") as f:
            b = f.read()
        if example == "terasort":
            at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            lines.append(f"{p}: {len(a)} bytes, expected {len(b)}; first difference at byte {at} "
                         f"(record {at // 100})")
        else:
            la, lb = a.split(b"\n"), b.split(b"\n")
            ca, cb = {}, {}
            for x in la:
                ca[x] = ca.get(x, 0) + 1
            for x in lb:
                cb[x] = cb.get(x, 0) + 1
            lost = [x for x in cb if cb[x] > ca.get(x, 0)]
            dup = [x for x in ca if ca[x] > cb.get(x, 0)]
            lines.append(f"{p}: {len(la) - 1} lines, expected {len(lb) - 1}; {len(lost)} distinct "
                         f"lines missing (e.g. {lost[:3]}), {len(dup)} extra or duplicated "
                         f"(e.g. {dup[:3]})")
        if len(lines) >= 10:
            break
    return lines


SANITIZER_RX = re.compile(
    rb"ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:")


def sanitizer_reports(run_dir):
    """Logs of the run's processes (driver, daemons, executors) holding a sanitizer report."""
    found = []
    for root, _, names in os.walk(run_dir):
        for n in names:
            if n.endswith((".log", ".err")) or n == "stderr":
                path = os.path.join(root, n)
                try:
                    with open(path, "rb") as f:
                        if SANITIZER_RX.search(f.read()):
                            found.append(os.path.relpath(path, run_dir))
                except OSError:
                    pass
    return sorted(found)


# ---- clusters -----------------------------------------------------------------------------------

class Cluster:
    """One run's cluster. Subclasses: LocalCluster, Standalone (loopback or namespaces)."""
    name = None

    def __init__(self, run):
        self.run = run
        self.dir = run.dir

    def env(self):
        return dict(os.environ, **{MARK_OWNER: str(OWNER), MARK_RUN: self.dir,
                                   "EMBER_LOG_LEVEL": "info", "LC_ALL": "C"})

    def spawn(self, cmd, log_name, **kw):
        f = open(os.path.join(self.dir, log_name), "w")
        return subprocess.Popen(cmd, stdout=kw.pop("stdout", f), stderr=f, env=self.env(),
                                stdin=subprocess.DEVNULL, **kw)

    def start(self):
        pass

    def driver_cmd(self, program, args):
        raise NotImplementedError

    def workers(self):
        """Live workers: [(pid, name)]"""
        raise NotImplementedError

    def stop(self):
        pass


class LocalCluster(Cluster):
    name = "lc"

    def driver_cmd(self, program, args):
        conf = CONF + [f"ember.local.dir={self.dir}/local"]
        os.makedirs(f"{self.dir}/local", exist_ok=True)
        return ([program, "--master", "local-cluster[2,1,1024]"]
                + [x for c in conf for x in ("--conf", c)] + args)

    def workers(self):
        out = []
        driver = self.run.driver.pid if self.run.driver else None
        for pid in all_pids():
            env = environ_of(pid)
            if env and env.get("EMBER_DAEMON_ROLE") == "worker" and \
                    env.get(MARK_RUN) == self.dir and alive(pid):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    continue
                if ppid == driver:
                    out.append((pid, env.get("EMBER_DAEMON_WORK_DIR", "?").rsplit("/", 1)[-1]))
        return sorted(out)


class Standalone(Cluster):
    """`ember master` and two `ember worker`s, on loopback (sa) or in namespaces (ns)."""

    def __init__(self, run, netns=None):
        super().__init__(run)
        self.netns = netns
        self.name = "ns" if netns else "sa"
        self.master = None
        self.master_starts = 0
        self.worker_procs = {}  # "w1" -> Popen
        self.proxy = None
        if netns:
            self.host = {"m": netns.ip["m"], "w1": netns.ip["w1"], "w2": netns.ip["w2"]}
            self.port = 7077
        else:
            self.host = {"m": "127.0.0.1", "w1": "127.0.0.1", "w2": "127.0.0.1"}
            self.port = free_port()

    def wrap(self, role, cmd):
        return (self.netns.exec(role) + cmd) if self.netns else cmd

    def start_master(self):
        self.master_starts += 1
        name = "master.log" if self.master_starts == 1 else f"master-{self.master_starts}.log"
        conf = DAEMON_CONF + ["ember.deploy.recoveryMode=FILESYSTEM",
                              f"ember.deploy.recoveryDirectory={self.dir}/recovery",
                              f"ember.local.dir={self.dir}/master"]
        os.makedirs(f"{self.dir}/master", exist_ok=True)
        cmd = self.wrap("m", [self.run.ember, "master", "--host", self.host["m"],
                              "--port", str(self.port)] + [x for c in conf for x in ("--conf", c)])
        self.master = self.spawn(cmd, name)
        if not wait_for_line(os.path.join(self.dir, name),
                             rf"master listening on {re.escape(self.host['m'])}:{self.port}", 20,
                             self.master):
            raise RuntimeError(f"the master did not start: {tail(os.path.join(self.dir, name), 3)}")

    def start(self):
        if self.netns:
            self.netns.setup()
        self.run.before_cluster(self)
        self.start_master()
        for role in ("w1", "w2"):
            wdir = f"{self.dir}/worker-{role}"
            os.makedirs(wdir, exist_ok=True)
            cmd = self.wrap(role, [self.run.ember, "worker", "--master",
                                   f"ember://{self.host['m']}:{self.port}", "--host",
                                   self.host[role], "--cores", "1", "--memory", "1g",
                                   "--work-dir", wdir]
                            + [x for c in DAEMON_CONF for x in ("--conf", c)])
            self.worker_procs[role] = self.spawn(cmd, f"worker-{role}.log")
        mlog = os.path.join(self.dir, "master.log")
        for role, p in self.worker_procs.items():
            if not wait_for_line(mlog, rf"registered worker worker-\S+-{p.pid} from "
                                       rf"{re.escape(self.host[role])}:", 20, p):
                raise RuntimeError(f"worker {role} did not register: "
                                   f"{tail(os.path.join(self.dir, f'worker-{role}.log'), 3)}")

    def driver_cmd(self, program, args):
        conf = CONF + [f"ember.local.dir={self.dir}/local",
                       f"ember.driver.host={self.host['m']}"]
        os.makedirs(f"{self.dir}/local", exist_ok=True)
        return self.wrap("m", [program, "--master", f"ember://{self.host['m']}:{self.port}"]
                         + [x for c in conf for x in ("--conf", c)] + args)

    def workers(self):
        return sorted((p.pid, role) for role, p in self.worker_procs.items() if p.poll() is None)

    def stop(self):
        procs = list(self.worker_procs.values()) + ([self.master] if self.master else [])
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 8
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.proxy:
            self.proxy.kill()
            self.proxy.wait()


# ---- faults -------------------------------------------------------------------------------------

class Fault:
    """One fault kind with its parameters, drawn from the run's rng at creation (the target as
    a fraction u_target of the candidates sorted, the rest per kind). inject(run) returns a
    description once injected, or None when its target does not exist yet (it is tried again
    20 ms later). Follow-up actions (SIGCONT, link up, master restart) go through run.later()."""

    def __init__(self, kind, rng):
        self.kind = kind
        self.u_target = rng.random()
        self.p = {}
        if kind == "corrupt-shuffle":
            self.p = {"nbytes": rng.randint(1, 16), "u_offset": rng.random()}
        elif kind == "restart-master":
            self.p = {"down_s": round(rng.uniform(0.3, 1.5), 2)}
        elif kind == "drop-packets":
            self.p = {"percent": rng.randint(3, 15)}
        elif kind == "delay":
            lat = rng.randint(20, 150)
            self.p = {"latency_ms": lat, "jitter_ms": rng.randint(0, lat // 2),
                      "bandwidth": rng.choice([0, 0, 4_000_000, 20_000_000])}
        elif kind == "conn-reset":
            self.p = {"percent": rng.randint(20, 80)}

    def pick(self, items):
        return items[min(int(self.u_target * len(items)), len(items) - 1)] if items else None

    def hold(self):
        return HOLD_S if self.kind in ("stop-executor", "link-down") else 0

    def inject(self, run):
        return getattr(self, "do_" + self.kind.replace("-", "_"))(run)

    def do_kill_executor(self, run):
        x = self.pick(executors_of(run.dir))
        if not x:
            return None
        os.kill(x[0], signal.SIGKILL)
        return f"executor {x[1]} (pid {x[0]}) killed"

    def do_stop_executor(self, run):
        x = self.pick(executors_of(run.dir))
        if not x:
            return None
        os.kill(x[0], signal.SIGSTOP)
        run.stopped.append(x[0])

        def cont():
            if alive(x[0]):
                os.kill(x[0], signal.SIGCONT)
                return f"executor {x[1]} (pid {x[0]}) continued"
            return f"executor {x[1]} (pid {x[0]}) gone before SIGCONT"
        run.later(HOLD_S, cont)
        return f"executor {x[1]} (pid {x[0]}) stopped for {HOLD_S} s"

    def do_kill_worker(self, run):
        w = self.pick(run.cluster.workers())
        if not w or not executors_of(run.dir):
            return None
        os.kill(w[0], signal.SIGKILL)
        return f"worker {w[1]} (pid {w[0]}) killed"

    def do_corrupt_shuffle(self, run):
        files = []
        for root, _, names in os.walk(run.dir):
            if "/output" in root or not root.endswith("blockmgr"):
                continue
            for n in names:
                m = re.fullmatch(r"shuffle_(\d+)_(\d+)\.data", n)
                path = os.path.join(root, n)
                if m and os.path.exists(path[:-5] + ".index"):
                    try:
                        if os.path.getsize(path) > 0:
                            files.append(path)
                    except OSError:
                        pass
        path = self.pick(sorted(files))
        if not path:
            return None
        size = os.path.getsize(path)
        n = min(self.p["nbytes"], size)
        off = min(int(self.p["u_offset"] * size), size - n)
        with open(path, "r+b") as f:
            f.seek(off)
            data = f.read(n)
            f.seek(off)
            f.write(bytes(b ^ 0xFF for b in data))
        return (f"{n} bytes flipped at offset {off} of {os.path.relpath(path, run.dir)} "
                f"({size} bytes)")

    def do_fill_disk(self, run):
        mnt = run.tmpfs
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        fd = os.open(os.path.join(mnt, "chaos-fill"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            try:
                os.posix_fallocate(fd, 0, free)
            except OSError:
                pass
            os.lseek(fd, 0, os.SEEK_END)  # then whatever fallocate left, unbuffered
            block = b"\0" * 65536
            try:
                while os.write(fd, block) > 0:
                    pass
            except OSError:
                pass
        finally:
            os.close(fd)
        st = os.statvfs(mnt)
        return (f"work directory of worker {run.tmpfs_role} ({TMPFS_SIZE} tmpfs) filled: "
                f"{st.f_bavail * st.f_frsize} bytes left")

    def do_restart_master(self, run):
        c = run.cluster
        if c.master.poll() is not None:
            return None
        c.master.kill()
        c.master.wait()
        down = self.p["down_s"]

        def restart():
            c.start_master()
            return f"master restarted on port {c.port} (log master-{c.master_starts}.log)"
        run.later(down, restart)
        return f"master (pid {c.master.pid}) killed; restart in {down} s"

    def _worker_ns(self, run):
        role = self.pick(["w1", "w2"])
        return role, run.cluster.netns.ns[role]

    def do_link_down(self, run):
        role, ns = self._worker_ns(run)
        sh(["ip", "-n", ns, "link", "set", "eth0", "down"])

        def up():
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            return f"link of {role} up"
        run.later(HOLD_S, up)
        return f"link of {role} ({run.cluster.host[role]}) down for {HOLD_S} s"

    def do_drop_packets(self, run):
        role, ns = self._worker_ns(run)
        pct = self.p["percent"]
        rules = ("table inet chaos_drop {\n"
                 f" chain in {{\n  type filter hook input priority 0;\n"
                 f"  iifname \"eth0\" numgen random mod 100 < {pct} drop\n }}\n"
                 f" chain out {{\n  type filter hook output priority 0;\n"
                 f"  oifname \"eth0\" numgen random mod 100 < {pct} drop\n }}\n}}\n")
        sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules)
        return f"{pct}% of packets dropped on {role}'s eth0, both ways, until the job ends"

    def do_delay(self, run):
        p = self.p
        run.proxy_cmd(f"latency {p['latency_ms']} {p['jitter_ms']}")
        what = f"latency {p['latency_ms']} ms + jitter {p['jitter_ms']} ms"
        if p["bandwidth"]:
            run.proxy_cmd(f"bandwidth {p['bandwidth']}")
            what += f", {p['bandwidth'] // 1000} kB/s per connection and direction"
        return f"{what} on {run.proxy_role}'s connections (chaos_proxy), until the job ends"

    def do_conn_reset(self, run):
        reply = run.proxy_cmd("reset-open")
        run.proxy_cmd(f"reset {self.p['percent']}")
        run.later(5, lambda: (run.proxy_cmd("reset 0"), "new connections no longer reset")[1])
        return (f"{run.proxy_role}'s open connections reset ({reply.split('ok ')[-1]}), then "
                f"{self.p['percent']}% of its new ones for 5 s")


# ---- one run ------------------------------------------------------------------------------------

class Run:
    def __init__(self, suite, seed, cluster, example, fault_kind, index, baseline=None):
        self.suite = suite
        self.seed = seed
        self.cluster_name = cluster
        self.example = example
        self.kind = fault_kind  # None: the fault-free run
        self.ember = suite.ember
        self.baseline = baseline
        tag = fault_kind or "baseline"
        self.dir = os.path.join(suite.root, f"run-{OWNER}-{index:03d}-{cluster}-{example}-{tag}")
        self.driver = None
        self.stopped = []
        self.actions = []  # (monotonic time, callable)
        self.events = []
        self.tmpfs = None
        self.tmpfs_role = None
        self.proxy_role = None
        self.proxy_ctl = None
        self.t0 = None
        rng = random.Random(seed)
        rng.randrange(len(CASES))  # the case, decoded by the caller
        self.u_time = rng.random()
        self.fault = Fault(fault_kind, rng) if fault_kind else None

    def note(self, msg):
        t = time.monotonic() - self.t0 if self.t0 else 0.0
        self.events.append(f"{t:7.3f} s  {msg}")

    def later(self, seconds, fn):
        self.actions.append((time.monotonic() + seconds, fn))

    # Set-up that must precede the daemons: a tmpfs work directory, the proxy's redirect.
    def before_cluster(self, cluster):
        if not self.fault:
            return
        if self.kind == "fill-disk":
            self.tmpfs_role = self.fault.pick(["w1", "w2"])
            self.tmpfs = f"{self.dir}/worker-{self.tmpfs_role}"
            os.makedirs(self.tmpfs, exist_ok=True)
            sh(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "chaos-fill", self.tmpfs])
        if self.kind in ("delay", "conn-reset"):
            self.start_proxy(cluster)

    def start_proxy(self, cluster):
        role = self.fault.pick(["w1", "w2"])
        self.proxy_role = role
        self.proxy_ctl = f"{self.dir}/proxy-{role}.ctl"
        ns = cluster.netns.ns[role]
        cmd = cluster.netns.exec(role) + [
            self.suite.proxy, "--transparent", "--listen", f"127.0.0.1:{PROXY_PORT}",
            "--control", self.proxy_ctl, "--mark", PROXY_MARK, "--seed", str(self.seed)]
        cluster.proxy = cluster.spawn(cmd, f"proxy-{role}.log", stdout=subprocess.PIPE, text=True)
        for line in cluster.proxy.stdout:
            if line.strip() == "ready":
                break
        else:
            log_path = os.path.join(self.dir, f"proxy-{role}.log")
            raise RuntimeError(f"chaos_proxy did not start: {tail(log_path)}")
        net = cluster.netns.net
        rules = ("table ip chaos_proxy {\n chain out {\n"
                 "  type nat hook output priority -100;\n"
                 f"  meta mark {PROXY_MARK} return\n"
                 f"  ip daddr {net}.0/24 ip daddr != {cluster.host[role]} meta l4proto tcp "
                 f"redirect to :{PROXY_PORT}\n }}\n}}\n")
        sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules)

    def proxy_cmd(self, line):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.proxy_ctl)
        s.sendall(line.encode() + b"\n")
        reply = s.makefile("r").readline().strip()
        s.close()
        if not reply.startswith("ok"):
            raise RuntimeError(f"chaos_proxy refused '{line}': {reply}")
        return reply

    def execute(self):
        """Runs the job (and the fault). Returns a result dict."""
        os.makedirs(self.dir, exist_ok=True)
        c = self.cluster_name
        if c == "lc":
            self.cluster = LocalCluster(self)
        else:
            self.cluster = Standalone(self, Netns(self.suite.next_netns()) if c == "ns" else None)
        res = {"seed": self.seed, "cluster": c, "example": self.example, "fault": self.kind,
               "dir": self.dir, "injected": None, "fault_at": None, "job": None, "notes": []}
        try:
            self.cluster.start()
            self.job(res)
        except Exception as e:  # the harness itself failed: say so, never count it as a pass
            res["verdict"] = "HARNESS"
            res["why"] = [f"harness error: {type(e).__name__}: {e}"]
        finally:
            self.teardown(res)
        reports = sanitizer_reports(self.dir)
        if reports:  # a sanitizer build: memory errors under faults fail the run
            if res["verdict"] in ("PASS", "OK", "MISSED"):
                res["verdict"], res["why"] = "SANITIZER", []
            res.setdefault("why", []).append(f"sanitizer reports in: {', '.join(reports[:5])}")
        with open(os.path.join(self.dir, "fault.log"), "w") as f:
            f.write("\n".join(self.events) + "\n")
        return res

    def job(self, res):
        program = os.path.join(self.suite.build, "examples", self.example)
        out = os.path.join(self.dir, "output")
        args, _ = self.suite.inputs.args(self.example, out)
        cmd = self.cluster.driver_cmd(program, args)
        with open(os.path.join(self.dir, "driver.cmd"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        base = self.baseline
        if base:
            lo, hi = 0.2, max(0.8 * base["job"], 0.3)
            fault_at = lo + self.u_time * (hi - lo)
            bound = 30 + 3 * base["job"] + self.fault.hold()
        else:
            fault_at, bound = None, 300
        res["planned_at"], res["bound"] = fault_at, bound
        self.t0 = time.monotonic()
        self.driver = self.cluster.spawn(cmd, "driver.err", stdout=open(
            os.path.join(self.dir, "driver.out"), "w"))
        self.note(f"driver started (pid {self.driver.pid}): {self.cluster_name} {self.example}")
        rc = None
        while True:
            rc = self.driver.poll()
            now = time.monotonic()
            if rc is not None:
                break
            if now - self.t0 > bound:
                self.note(f"bound of {bound:.0f} s reached: driver killed")
                self.driver.kill()
                self.driver.wait()
                rc = "HANG"
                break
            if fault_at is not None and res["injected"] is None and now - self.t0 >= fault_at:
                what = self.fault.inject(self)
                if what:
                    res["injected"] = what
                    res["fault_at"] = time.monotonic() - self.t0
                    self.note("FAULT " + what)
            for item in list(self.actions):
                if now >= item[0]:
                    self.actions.remove(item)
                    self.note(item[1]())
            time.sleep(0.02)
        end = time.monotonic() - self.t0
        res["job"] = end
        self.note(f"driver ended: {rc}")
        if res["fault_at"] is not None:
            res["recovery"] = end - res["fault_at"]
        if self.kind == "restart-master" and res["injected"]:
            res["notes"].append(self.master_recovery_note())
        if rc == "HANG":
            res["verdict"] = "HANG"
            res["why"] = [f"no result within the bound of {bound:.0f} s; last driver lines:"] + \
                tail(os.path.join(self.dir, "driver.err"), 6)
            return
        if self.kind and res["injected"] is None:
            res["verdict"] = "MISSED"
            res["why"] = [f"the job ended at {end:.2f} s, before the fault (planned at "
                          f"{fault_at:.2f} s) had a target"]
            if rc != 0:
                res["verdict"] = "ERROR"
                res["why"] = [f"driver exit status {rc} before any fault"] + self.driver_error()
            return
        if rc != 0:
            res["verdict"] = "ERROR"
            said = self.driver_error()
            res["why"] = [f"driver exit status {rc}: {said[0] if said else ''}"] + said[1:]
            return
        digests, other = output_digest(self.example, out)
        res["digests"], res["out"] = digests, out
        stray = [n for n in other if n != "_SUCCESS"]
        if "_SUCCESS" not in other or stray:
            # Only committed part files and the marker may land (issue 4, output commit): a
            # leftover attempt file is a difference from the fault-free output too.
            res["verdict"] = "WRONG"
            res["why"] = ["no _SUCCESS marker in the output"] if "_SUCCESS" not in other else \
                [f"files other than part-* and _SUCCESS in the output: {stray[:5]}"]
            if digests != (base or {}).get("digests", digests):
                res["why"].append("and the part files differ from the fault-free output")
            return
        if base is None:
            res["verdict"] = "OK"
            return
        if digests == base["digests"]:
            res["verdict"] = "PASS"
        else:
            res["verdict"] = "WRONG"
            res["why"] = ["output differs from the fault-free output:"] + describe_difference(
                self.example, out, base["out"], digests, base["digests"])

    def master_recovery_note(self):
        """Whether the restarted master knew the application (information, not the verdict:
        the verdict is the output's)."""
        c = self.cluster
        if c.master_starts < 2:
            return "master recovery not exercised: the job ended before the master came back"
        text = open(os.path.join(self.dir, "driver.err"), errors="replace").read()
        m = re.search(r"registered application \S+ as (app-\S+)", text)
        app = m.group(1) if m else None
        restarted = "".join(open(os.path.join(self.dir, f"master-{i}.log"),
                                 errors="replace").read() for i in range(2, c.master_starts + 1))
        lost = re.search(r"WARN cluster: lost the master[^\n]*", text)
        said = [ln for ln in restarted.splitlines() if app and app in ln]
        if said:
            return f"the restarted master mentions the application: {said[0][:200]}"
        return (f"master recovery: the restarted master never mentions application {app}"
                + (f"; the driver said: {lost.group(0)[:160]}" if lost else ""))

    def driver_error(self):
        """What the driver said: its final message first (the examples print
        "<example>: <error>" last), then the last warnings and errors before it."""
        lines = tail(os.path.join(self.dir, "driver.err"), 400)
        final = [ln for ln in lines if ln.startswith(self.example + ": ")]
        keep = [ln for ln in lines if re.search(r"abort|ERROR|error|failed|lost|refused", ln)
                and ln not in final]
        return final[-1:] + (keep[-6:] or lines[-4:])

    def teardown(self, res):
        for pid in self.stopped:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
        if self.driver and self.driver.poll() is None:
            self.driver.kill()
            self.driver.wait()
        if hasattr(self, "cluster"):
            self.cluster.stop()
        # Whatever still runs 10 s after the driver and the daemons were stopped was left
        # behind by the cluster (an executor that outlived its worker or its driver, a daemon
        # that ignored SIGTERM): a note.
        deadline = time.monotonic() + 10
        while procs_under(self.dir + "/") and time.monotonic() < deadline:
            time.sleep(0.1)
        left = procs_under(self.dir + "/")
        if left:
            desc = []
            for pid in left:
                env = environ_of(pid) or {}
                role = "executor" if env.get("EMBER_EXECUTOR_MODE") == "1" else \
                    env.get("EMBER_DAEMON_ROLE", "process")
                desc.append(f"{role} {pid}")
            res["notes"].append(f"still running after the cluster stopped: {', '.join(desc)}")
            self.note(res["notes"][-1])
        survivors = kill_and_wait(self.dir + "/")
        if survivors:
            res["notes"].append(f"processes survive SIGKILL: {survivors}")
        if getattr(self.cluster, "netns", None):
            self.cluster.netns.teardown()
        if self.tmpfs:
            sh(["umount", self.tmpfs], check=False)
            if os.path.ismount(self.tmpfs):
                sh(["umount", "-l", self.tmpfs], check=False)


# ---- the suite ----------------------------------------------------------------------------------

class Suite:
    def __init__(self, opts):
        self.build = os.path.abspath(opts.build)
        self.ember = os.path.join(self.build, "bin", "ember")
        self.proxy = os.path.join(self.build, "tests", "chaos_proxy")
        self.root = os.path.abspath(opts.dir)
        self.keep = opts.keep
        self.results = []
        self.baselines = {}
        self.refs = {}  # example -> verified fault-free result
        self.netns_count = 0
        self.index = 0
        self.root_ok = os.geteuid() == 0
        self.ns_why = netns_unavailable()
        if not self.root_ok:
            self.fill_why = "needs root to mount a tmpfs"
        else:
            self.fill_why = None
        self.inputs = None

    def next_netns(self):
        self.netns_count += 1
        return self.netns_count

    def unavailable(self, case):
        c, _, f = case
        if c == "ns" and self.ns_why:
            return f"network namespaces: {self.ns_why}"
        if f in NEEDS_ROOT and self.fill_why:
            return self.fill_why
        return None

    def baseline(self, cluster, example):
        key = (cluster, example)
        if key in self.baselines:
            return self.baselines[key]
        self.index += 1
        run = Run(self, 0, cluster, example, None, self.index)
        res = run.execute()
        ok = res["verdict"] == "OK"
        why = res.get("why", [])
        if ok and example not in self.refs:
            _, ref_args = self.inputs.args(example, res["out"])
            r = subprocess.run([PY, os.path.join(SRC, "tests/e2e/reference.py")] + ref_args,
                               capture_output=True, text=True)
            if r.returncode == 0:
                # The verified output stays as the example's reference for every later run.
                keep = os.path.join(self.inputs.dir, f"ref-{example}")
                shutil.rmtree(keep, ignore_errors=True)
                shutil.move(res["out"], keep)
                res["out"] = keep
                self.refs[example] = res
                verified = "verified by tests/e2e/reference.py"
            else:
                ok = False
                why = ["the fault-free output differs from tests/e2e/reference.py:"] + \
                    r.stdout.strip().splitlines()[:5]
        elif ok:
            ref = self.refs[example]
            if res["digests"] == ref["digests"]:
                verified = "same as the verified reference output"
            else:
                ok = False
                why = ["the fault-free output differs from the verified one:"] + \
                    describe_difference(example, res["out"], ref["out"], res["digests"],
                                        ref["digests"])
        if ok:
            res["out"] = self.refs[example]["out"]
            log(f"baseline {cluster}/{example}: fault-free job {res['job']:.2f} s, output "
                f"{verified}")
            if not self.keep:
                shutil.rmtree(run.dir, ignore_errors=True)
            self.baselines[key] = res
        else:
            log(f"baseline {cluster}/{example}: FAILED ({res['verdict']}), kept {run.dir}")
            for line in why:
                log(f"    | {line}")
            self.baselines[key] = None
        return self.baselines[key]

    def run_seed(self, seed, label):
        case = decode(seed)
        cluster, example, kind = case
        why = self.unavailable(case)
        if why:
            log(f"{label} seed={seed} cluster={cluster} example={example} fault={kind}: "
                f"SKIPPED ({why})")
            return
        base = self.baseline(cluster, example)
        if base is None:
            res = {"seed": seed, "cluster": cluster, "example": example, "fault": kind,
                   "verdict": "NO-BASELINE", "why": ["the fault-free run failed (above)"],
                   "notes": [], "dir": None}
            self.report(label, res)
            return
        for attempt in (1, 2):
            self.index += 1
            run = Run(self, seed, cluster, example, kind, self.index, base)
            res = run.execute()
            self.report(label if attempt == 1 else label + " retry", res)
            if res["verdict"] in ("PASS", "MISSED") and not self.keep:
                shutil.rmtree(run.dir, ignore_errors=True)
            if res["verdict"] != "MISSED" or attempt == 2:
                break
            # The job ran faster than its fault-free run did: once more, with the fault window
            # taken from this run's duration (same seed, same fraction of the window).
            base = dict(base, job=res["job"])

    def report(self, label, r):
        self.results.append(r)

        def secs(x):
            return f"{x:.2f}s" if x is not None else "-"
        line = (f"{label} seed={r['seed']} cluster={r['cluster']} example={r['example']} "
                f"fault={r['fault']} at={secs(r.get('fault_at'))} job={secs(r.get('job'))} "
                f"recovery={secs(r.get('recovery'))} bound={secs(r.get('bound'))} "
                f"verdict={r['verdict']}")
        log(line)
        if r.get("injected"):
            log(f"    fault: {r['injected']}")
        for n in r.get("notes", []):
            log(f"    note: {n}")
        if r["verdict"] == "MISSED":
            log(f"    {r['why'][0]}")
        if r["verdict"] not in ("PASS", "MISSED"):
            for w in r.get("why", []):
                log(f"    | {w}")
            if r.get("dir"):
                log(f"    kept {r['dir']}  (replay: CHAOS_SEED={r['seed']} make chaos)")

    def summary(self):
        log("")
        log("fault kind        runs  passed  failed  missed  median recovery  max recovery")
        failed_total = 0
        for kind in FAULTS:
            rs = [r for r in self.results if r["fault"] == kind]
            if not rs:
                continue
            passed = [r for r in rs if r["verdict"] == "PASS"]
            missed = [r for r in rs if r["verdict"] == "MISSED"]
            failed = len(rs) - len(passed) - len(missed)
            failed_total += failed
            rec = [r["recovery"] for r in passed if r.get("recovery") is not None]
            med = f"{statistics.median(rec):.2f} s" if rec else "-"
            mx = f"{max(rec):.2f} s" if rec else "-"
            log(f"{kind:<17} {len(rs):>4}  {len(passed):>6}  {failed:>6}  {len(missed):>6}  "
                f"{med:>15}  {mx:>12}")
        notes = {}
        for r in self.results:
            for n in r.get("notes", []):
                n = re.sub(r"app-[0-9-]+", "app-…", f"{r['fault']}: {n}")
                n = re.sub(r"ember://[0-9.:]+", "ember://…", n)
                notes[n] = notes.get(n, 0) + 1
        if notes:
            log("")
            log("notes (information; the verdict is the output's):")
            for n in sorted(notes)[:20]:
                log(f"  {notes[n]} x {n}")
        bad = [r for r in self.results if r["verdict"] not in ("PASS", "MISSED")]
        if bad:
            log("")
            log("failed runs:")
            for r in bad:
                first = (r.get("why") or [""])[0]
                log(f"  CHAOS_SEED={r['seed']}  {r['cluster']}/{r['example']}/{r['fault']}: "
                    f"{r['verdict']}: {first}")
        return failed_total


def decode(seed):
    return CASES[random.Random(seed).randrange(len(CASES))]


def seed_for(case, rng):
    """A fresh seed (from the schedule's rng) that decodes to CASE."""
    while True:
        s = rng.randrange(1, 2**32)
        if decode(s) == case:
            return s


# ---- stale state of dead invocations ------------------------------------------------------------

def owner_alive(pid):
    """Whether chaos.py process PID still runs."""
    if pid == OWNER:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return alive(pid) and b"chaos.py" in f.read()
    except OSError:
        return False


def clean_stale(root):
    """Processes, mounts and namespaces of earlier invocations whose chaos.py is gone."""
    for pid in all_pids():
        env = environ_of(pid)
        if not env:
            continue
        owner = env.get(MARK_OWNER)
        xdir = env.get("EMBER_EXECUTOR_DIR", "")
        m = re.search(r"/run-(\d+)-", xdir) if xdir.startswith(root + "/") else None
        dead = (owner and owner.isdigit() and not owner_alive(int(owner))) or \
            (m and not owner_alive(int(m.group(1))))
        if dead and alive(pid):
            log(f"stale: killing process {pid} of a dead chaos run")
            kill_all([pid])
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for mnt in mounts:
        m = re.search(r"/run-(\d+)-", mnt)
        if mnt.startswith(root + "/") and m and not owner_alive(int(m.group(1))):
            log(f"stale: unmounting {mnt}")
            sh(["umount", "-l", mnt], check=False)
    if os.path.isdir("/run/netns"):
        for name in os.listdir("/run/netns"):
            m = re.fullmatch(r"chaos-(\d+)-.*", name)
            if m and not owner_alive(int(m.group(1))):
                log(f"stale: removing namespace {name}")
                remove_namespace(name)
    if os.path.isdir(root):
        for name in os.listdir(root):
            m = re.fullmatch(r"inputs-(\d+)", name)
            if m and not owner_alive(int(m.group(1))):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def cleanup_mine(suite):
    survivors = kill_and_wait(f"{suite.root}/run-{OWNER}-")
    if survivors:
        log(f"chaos: processes survive SIGKILL: {survivors}")
    with open("/proc/mounts") as f:
        for line in f:
            mnt = line.split()[1]
            if mnt.startswith(f"{suite.root}/run-{OWNER}-"):
                sh(["umount", "-l", mnt], check=False)
    if os.path.isdir("/run/netns"):
        for name in os.listdir("/run/netns"):
            if name.startswith(f"chaos-{OWNER}-"):
                remove_namespace(name)
    if suite.inputs:
        shutil.rmtree(suite.inputs.dir, ignore_errors=True)


# ---- main ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="Ember's chaos suite (docs/chaos.md)")
    ap.add_argument("--build", default=os.environ.get("CHAOS_BUILD", os.path.join(SRC, "build")))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("CHAOS_RUNS") or 0))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED") or 0))
    ap.add_argument("--schedule", type=int,
                    default=int(os.environ.get("CHAOS_SCHEDULE") or 0))
    ap.add_argument("--short", action="store_true",
                    default=os.environ.get("CHAOS_SHORT", "") not in ("", "0"))
    ap.add_argument("--only", default=os.environ.get("CHAOS_ONLY", ""))
    ap.add_argument("--keep", action="store_true",
                    default=os.environ.get("CHAOS_KEEP", "") not in ("", "0"))
    ap.add_argument("--dir", default=os.environ.get("CHAOS_DIR", "/tmp/ember-chaos"))
    opts = ap.parse_args()

    suite = Suite(opts)
    for path in (suite.ember, suite.proxy) + tuple(
            os.path.join(suite.build, "examples", e) for e in EXAMPLES):
        if not os.access(path, os.X_OK):
            log(f"chaos: missing {path}: build first (make, or cmake --build {suite.build})")
            return 2
    os.makedirs(suite.root, exist_ok=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    only = [x for x in opts.only.split(",") if x]
    bad = [x for x in only if x not in CLUSTERS + EXAMPLES + list(FAULTS)]
    if bad:
        log(f"chaos: CHAOS_ONLY: unknown {bad} (clusters {CLUSTERS}, examples {EXAMPLES}, "
            f"faults {list(FAULTS)})")
        return 2

    def wanted(case):
        """Within each category named in CHAOS_ONLY, the case must be one of those named."""
        for i, names in enumerate((CLUSTERS, EXAMPLES, list(FAULTS))):
            chosen = [x for x in only if x in names]
            if chosen and case[i] not in chosen:
                return False
        return True

    schedule = opts.schedule or random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(schedule)
    if opts.seed:
        plan = [opts.seed]
        mode = f"replay of seed {opts.seed}"
    elif opts.runs:
        cases = [c for c in CASES if wanted(c) and not suite.unavailable(c)]
        plan = []
        while len(plan) < opts.runs and cases:
            s = rng.randrange(1, 2**32)
            if decode(s) in cases:
                plan.append(s)
        mode = f"{opts.runs} random runs (CHAOS_SCHEDULE={schedule})"
    else:
        cases = SHORT if opts.short else CASES
        plan = [seed_for(c, rng) for c in cases if wanted(c)]
        mode = ("short" if opts.short else "full matrix") + f" (CHAOS_SCHEDULE={schedule})"
    log(f"chaos: {mode}: {len(plan)} runs; build {suite.build}; runs in {suite.root}")
    log(f"chaos: options {' '.join(CONF)}")
    if suite.ns_why:
        log(f"chaos: network-namespace cluster SKIPPED: {suite.ns_why}")
    if suite.fill_why:
        log(f"chaos: fill-disk SKIPPED: {suite.fill_why}")
    clean_stale(suite.root)
    failed = 0
    if any(decode(sd)[2] in ("delay", "conn-reset") and not suite.unavailable(decode(sd))
           for sd in plan):
        # The proxy's own tests first: the delay faults are only as good as the proxy.
        r = subprocess.run([PY, os.path.join(SRC, "tests/chaos/test_proxy.py"), suite.proxy],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            log("chaos: tests/chaos/test_proxy.py failed: the proxy cannot be trusted")
            log(r.stdout + r.stderr)
            return 1
        log(f"chaos: chaos_proxy {r.stdout.strip().splitlines()[-1]} (tests/chaos/test_proxy.py)")
    try:
        t = time.monotonic()
        suite.inputs = Inputs(os.path.join(suite.root, f"inputs-{OWNER}"), suite.ember)
        log(f"chaos: inputs made in {time.monotonic() - t:.1f} s")
        for i, seed in enumerate(plan):
            suite.run_seed(seed, f"[{i + 1}/{len(plan)}]")
        failed = suite.summary()
    except KeyboardInterrupt as e:
        log(f"chaos: interrupted ({e}): cleaning up")
        failed = 1
    finally:
        cleanup_mine(suite)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
