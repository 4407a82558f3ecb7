#!/usr/bin/env bash
# End-to-end, multi-host: a real standalone cluster spread over three network namespaces of
# this machine (tests/e2e/netns.sh: "m" with the master and the drivers, "w1" and "w2" with a
# worker each, joined by a bridge in a fourth namespace, each with its own address in
# 10.213.X.0/24), so everything between driver, master, workers and executors really crosses
# a network. Every output is checked against tests/e2e/reference.py or Python, never Ember.
#
#   1. every example (wordcount, terasort, pagerank, join) in client mode, driver in "m";
#   2. the same examples in cluster deploy mode (`ember submit --deploy-mode cluster`, polling
#      `--status` until FINISHED) — skipped with a line saying so while `ember submit` does
#      not exist;
#   3. a worker joining mid-application gets an executor that runs tasks of the running job
#      (tests/e2e/multihost_app.c: tasks wait on a gate file the test opens only once the new
#      worker's executor has registered);
#   4. ember.cores.max=64 on two 1-core workers runs on the 2 cores there are;
#   5. broadcast variables and accumulators across hosts (tests/e2e/multihost_shared.c), when
#      libember has them;
#   6. with ember.authenticate.secret on master, workers and driver the examples work; a
#      worker in w2 with a wrong secret is refused (the master logs it).
#
# What proves that work crossed hosts (per application):
#   - executors ran on both workers: each worker's work directory holds an executor directory
#     of the application whose stderr says its block server listened on that worker's own
#     address — an address that exists only inside that worker's namespace;
#   - shuffle blocks crossed: the block server (the worker's shuffle service, or an executor's
#     own) on one worker logged (at debug
#     level, which the driver's EMBER_LOG_LEVEL passes on to its executors) a fetcher
#     connecting from the other worker's address; fetchers connect only to read non-empty
#     remote blocks.
#
# Needs root and working `ip netns` (CI has both); otherwise prints why and exits 77 (ctest
# reports the test as skipped). Everything is removed on exit, failure or interruption
# (processes in the namespaces, namespaces with their links, temporary files), and the end of
# the run checks that nothing is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
need_file "$EMBER"
for e in wordcount terasort pagerank join; do need_file "$EX/$e"; done
REF="$PY $EMBER_SRC/tests/e2e/reference.py"

if ! why=$(netns_unavailable); then
    echo "SKIPPED: multi-host tests: $why"
    rm -rf "$T"
    exit 77
fi

cleanup()
{
    trap - EXIT INT TERM HUP
    netns_teardown
    [ "${EMBER_TEST_KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "interrupted: removing the namespaces, their processes and $T"; exit 130' INT TERM HUP

root_links=$(ip -o link show | cut -d: -f2 | sort)
if netns_setup; then
    pass "three hosts on a private bridge: m $IP_M, w1 $IP_W1, w2 $IP_W2"
else
    fail "setting up the namespaces"
    finish
fi
# Reachability: a TCP connect to a closed port of w1 and w2 from m must be answered (refused),
# not time out.
if ip netns exec "$NS_M" $PY -c '
import socket, sys
for a in sys.argv[1:]:
    try:
        socket.create_connection((a, 9), timeout=3).close()
    except ConnectionRefusedError:
        pass
' "$IP_W1" "$IP_W2" 2>"$T/reach.err"; then
    pass "m reaches w1 and w2 over the bridge"
else
    fail "m reaches w1 and w2 over the bridge"
    show reach
    finish
fi

# ---- helpers ------------------------------------------------------------------------------------
SECRET_ARGS=()
# start_master NAME PORT [ARGS...]: `ember master` in m on IP_M:PORT, log $T/NAME.log.
start_master()
{
    local name=$1 port=$2
    shift 2
    ip netns exec "$NS_M" "$EMBER" master --host "$IP_M" --port "$port" --conf "ember.local.dir=$T/mstore" "${SECRET_ARGS[@]}" \
        "$@" 2>"$T/$name.log" &
    disown $!
    if wait_for "$T/$name.log" "master listening on $IP_M:$port" 20; then
        pass "$name: master listens on $IP_M:$port"
    else
        fail "$name: master listens on $IP_M:$port"
        sed 's/^/    | /' "$T/$name.log" | head -5
    fi
}
# start_worker NAME NS IP PORT CORES [ARGS...]: `ember worker` in NS, announcing IP, offering
# CORES and WORKER_MEMORY, work directory $T/NAME, log $T/NAME.log; sets wpid (the worker's id
# ends with it).
WORKER_MEMORY=1g
start_worker()
{
    local name=$1 ns=$2 ip=$3 port=$4 cores=$5
    shift 5
    EMBER_LOG_LEVEL=debug ip netns exec "$ns" "$EMBER" worker --master "ember://$IP_M:$port" --host "$ip" \
        --cores "$cores" --memory "$WORKER_MEMORY" --work-dir "$T/$name" "${SECRET_ARGS[@]}" "$@" \
        2>"$T/$name.log" &
    wpid=$!
    disown "$wpid"
}
# registered MASTERLOG NAME IP PID: checks the master registered the worker PID from IP.
registered()
{
    if wait_for "$1" "registered worker worker-[0-9]+-.*-$4 from $3:" 20; then
        pass "worker $2 registers from $3"
    else
        fail "worker $2 registers from $3"
        sed 's/^/    | /' "$T/$2.log" | tail -5
    fi
}
# drive NAME PORT PROGRAM [ARGS...]: runs PROGRAM in m as the driver (client mode) of
# ember://IP_M:PORT, with ember.driver.host=IP_M; stdout/stderr in $T/NAME.out/.err; sets rc.
drive()
{
    local name=$1 port=$2 prog=$3
    shift 3
    run "$name" ip netns exec "$NS_M" env EMBER_LOG_LEVEL=debug timeout -k 5 150 "$prog" \
        --master "ember://$IP_M:$port" --conf "ember.driver.host=$IP_M" "${SECRET_ARGS[@]}" "$@"
}
# app_of NAME: the application id of the driver run NAME (from its log).
app_of() { sed -n 's/.* context: started \(app-[^ ]*\) .*/\1/p' "$T/$1.err" | head -1; }
# ran_on NAME APP WORKDIR IP: an executor of APP ran under WORKDIR with its block server on IP.
ran_on()
{
    grep -qs "executor [0-9]* of $2: .* block server $4:[0-9]" "$T/$3/$2"/*/stderr
}
# check_hosts NAME WORKDIR1 WORKDIR2: the application of driver run NAME had executors on both
# workers, and shuffle blocks went from one worker to the other.
check_hosts()
{
    local name=$1 wd1=$2 wd2=$3 app
    app=$(app_of "$name")
    if [ -z "$app" ]; then
        fail "$name: no application id in the driver's log"
        show "$name"
        return
    fi
    if ran_on "$name" "$app" "$wd1" "$IP_W1" && ran_on "$name" "$app" "$wd2" "$IP_W2"; then
        pass "$name: executors ran on w1 ($IP_W1) and w2 ($IP_W2)"
    else
        fail "$name: executors ran on w1 and w2"
        ls -R "$T/$wd1" "$T/$wd2" 2>&1 | sed 's/^/    | /' | head -20
        grep -h "registered from\|started app" "$T/$name.err" | sed 's/^/    | /'
    fi
    # The blocks are served by the worker's shuffle service (its log) or, without one, by the
    # executor's own block server (the executor's stderr).
    if grep -qs "fetcher $IP_W2:[0-9]* of application '$app' connected" "$T/$wd1.log" \
        "$T/$wd1/$app"/*/stderr ||
        grep -qs "fetcher $IP_W1:[0-9]* of application '$app' connected" "$T/$wd2.log" \
            "$T/$wd2/$app"/*/stderr; then
        pass "$name: shuffle blocks crossed between w1 and w2"
    else
        fail "$name: shuffle blocks crossed between w1 and w2"
        grep -h "fetcher\|block server" "$T/$wd1/$app"/*/stderr "$T/$wd2/$app"/*/stderr 2>/dev/null |
            sed 's/^/    | /' | head -10
    fi
}
# verify NAME KIND OUTDIR REF_ARGS...: reference.py KIND OUTDIR REF_ARGS... agrees.
verify()
{
    local name=$1 kind=$2
    shift 2
    if $REF "$kind" "$@" >"$T/$name.diff" 2>&1; then
        pass "$name: output matches the reference"
    else
        fail "$name: output differs from the reference"
        sed 's/^/    | /' "$T/$name.diff" | head -10
    fi
}
# examples TAG PORT WORKDIR1 WORKDIR2: the four examples in client mode, checked.
examples()
{
    local tag=$1 port=$2 wd1=$3 wd2=$4
    drive "$tag-wordcount" "$port" "$EX/wordcount" --conf ember.files.maxPartitionBytes=256k \
        "$T/text" "$T/out-$tag-wordcount"
    if [ "$rc" -eq 0 ]; then
        verify "$tag-wordcount" wordcount "$T/out-$tag-wordcount" "$T/text"
        check_hosts "$tag-wordcount" "$wd1" "$wd2"
    else
        fail "$tag-wordcount: exit status $rc" && show "$tag-wordcount"
    fi
    drive "$tag-terasort" "$port" "$EX/terasort" "$T/ts" "$T/out-$tag-terasort"
    if [ "$rc" -eq 0 ]; then
        verify "$tag-terasort" terasort "$T/out-$tag-terasort" "$T/ts"
        check_hosts "$tag-terasort" "$wd1" "$wd2"
    else
        fail "$tag-terasort: exit status $rc" && show "$tag-terasort"
    fi
    drive "$tag-pagerank" "$port" "$EX/pagerank" --iterations 4 "$T/graph.txt" \
        "$T/out-$tag-pagerank"
    if [ "$rc" -eq 0 ]; then
        verify "$tag-pagerank" pagerank "$T/out-$tag-pagerank" 4 "$T/graph.txt"
        check_hosts "$tag-pagerank" "$wd1" "$wd2"
    else
        fail "$tag-pagerank: exit status $rc" && show "$tag-pagerank"
    fi
    drive "$tag-join" "$port" "$EX/join" "$T/left.txt" "$T/right.txt" "$T/out-$tag-join"
    if [ "$rc" -eq 0 ]; then
        verify "$tag-join" join "$T/out-$tag-join" "$T/left.txt" "$T/right.txt"
        check_hosts "$tag-join" "$wd1" "$wd2"
    else
        fail "$tag-join: exit status $rc" && show "$tag-join"
    fi
}
# build_prog NAME SOURCE: compiles a test driver against libember.a into $T/NAME. -fno-lto: an
# optimised libember.a holds fat LTO objects, and a link-time optimisation of all of it takes
# ~10 s; their regular code links in a fraction of a second.
build_prog()
{
    if cc ${EMBER_CFLAGS:-} -fno-lto -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
        -I"$EMBER_SRC/include" "$2" "$EMBER_BUILD/libember.a" \
        $(pkg-config --libs liblz4 libzstd libxxhash libsodium libuv) -lpthread -lm \
        -o "$T/$1" 2>"$T/cc-$1.err"; then
        pass "$1 compiles"
        return 0
    fi
    fail "$1 compiles"
    show "cc-$1"
    return 1
}

# ---- inputs (small: the point is the network, not the volume) -----------------------------------
ok=1
"$EMBER" gen text --size 1m --seed 7 --files 3 "$T/text" || ok=0
"$EMBER" gen terasort --records 20000 --seed 5 --files 3 "$T/ts" || ok=0
"$EMBER" gen graph --nodes 1000 --edges 10000 --seed 3 "$T/graph.txt" || ok=0
$PY - "$T" <<'PYEOF' || ok=0
import random, sys
t = sys.argv[1]
r = random.Random(11)
with open(t + "/left.txt", "w") as f:
    for i in range(10000):
        f.write("k%d\tL%d\n" % (r.randrange(2000), i))
with open(t + "/right.txt", "w") as f:
    for i in range(3000):
        f.write("k%d\tR%d\n" % (r.randrange(2000), i))
PYEOF
if [ $ok -eq 1 ]; then pass "inputs generated"; else fail "inputs generated" && finish; fi

# ---- 1, 4, 5: two 1-core workers, client mode ----------------------------------------------------
start_master m1 7077
start_worker c1-w1 "$NS_W1" "$IP_W1" 7077 1
registered "$T/m1.log" c1-w1 "$IP_W1" "$wpid"
start_worker c1-w2 "$NS_W2" "$IP_W2" 7077 1
registered "$T/m1.log" c1-w2 "$IP_W2" "$wpid"

examples client 7077 c1-w1 c1-w2

# 4: more cores asked than exist.
drive coresmax 7077 "$EX/wordcount" --conf ember.cores.max=64 \
    --conf ember.files.maxPartitionBytes=256k "$T/text" "$T/out-coresmax"
if [ "$rc" -eq 0 ]; then
    verify coresmax wordcount "$T/out-coresmax" "$T/text"
    app=$(app_of coresmax)
    if grep -q "registered application $app (wordcount): cores max 64" "$T/m1.log" &&
        grep -q "context: started $app .* with 2 task slots" "$T/coresmax.err"; then
        pass "coresmax: asked for 64 cores, ran on the 2 there are"
    else
        fail "coresmax: asked for 64 cores, ran on the 2 there are"
        grep -h "$app" "$T/m1.log" "$T/coresmax.err" | sed 's/^/    | /' | head
    fi
    check_hosts coresmax c1-w1 c1-w2
else
    fail "coresmax: exit status $rc" && show coresmax
fi

# 5: broadcast variables and accumulators (when libember has them).
have_shared()
{
    [ -f "$EMBER_SRC/include/ember/shared.h" ] &&
        [ "$(nm "$EMBER_BUILD/libember.a" 2>/dev/null | grep -E ' T (em_broadcast_create|em_broadcast_value|em_accumulator_create|em_accumulator_add)$' |
            sort -u | wc -l)" -eq 4 ]
}
if ! have_shared; then
    echo "# broadcast/accumulators: not in libember yet (no em_broadcast_create / em_accumulator_create): skipped"
elif build_prog multihost_shared "$EMBER_SRC/tests/e2e/multihost_shared.c"; then
    N=300000
    drive shared 7077 "$T/multihost_shared" "$N" "$T/shared.txt"
    if [ "$rc" -eq 0 ]; then
        if $PY - "$N" "$T/shared.txt" "$IP_W1" "$IP_W2" >"$T/shared.diff" 2>&1 <<'PYEOF'; then
import sys
n, path, w1, w2 = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
TN = 100003
table = [(i * 7919 + 13) % 1000003 for i in range(TN)]
vals = [table[x % TN] for x in range(n)]
want = {"sum": str(sum(vals)), "even": str(sum(1 for v in vals if v % 2 == 0)),
        "half": "%.1f" % (sum(vals) / 2), "max": str(max(vals))}
got, hosts = {}, {}
for line in open(path):
    f = line.split()
    if f[0] == "host":
        hosts[f[1]] = int(f[2])
    else:
        got[f[0]] = f[1]
bad = [f"{k}: expected {want[k]}, got {got.get(k)}" for k in want if got.get(k) != want[k]]
if set(hosts) != {w1, w2}:
    bad.append(f"tasks read the broadcast on {sorted(hosts)}, expected on {w1} and {w2}")
bad += [f"{h} read a table summing to {s}, expected {sum(table)}"
        for h, s in hosts.items() if s != sum(table)]
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF
            pass "shared: broadcast read on w1 and w2, accumulators (int64, float64, max) right"
        else
            fail "shared: broadcast / accumulators"
            sed 's/^/    | /' "$T/shared.diff" | head
        fi
    else
        fail "shared: exit status $rc" && show shared
    fi
fi
netns_kill_all

# ---- 2: cluster deploy mode ----------------------------------------------------------------------
# submit_cluster NAME PORT PROGRAM [ARGS...]: submits in cluster mode from m, then polls --status
# until a final state; sets driver (its id), state (FINISHED, FAILED, ..., or TIMEOUT) and
# dworker (the worker it ran on, from --status).
submit_cluster()
{
    local name=$1 port=$2
    shift 2
    state=
    driver=
    dworker=
    run "$name-submit" ip netns exec "$NS_M" timeout -k 5 60 "$EMBER" submit \
        --master "ember://$IP_M:$port" --deploy-mode cluster "${SECRET_ARGS[@]}" "$@"
    if [ "$rc" -ne 0 ]; then
        state="SUBMIT-FAILED($rc)"
        return
    fi
    driver=$(grep -Eo 'driver-[A-Za-z0-9-]+' "$T/$name-submit.out" | head -1)
    [ -z "$driver" ] && driver=$(awk 'NF { w = $NF } END { print w }' "$T/$name-submit.out")
    local deadline=$((SECONDS + 150))
    while [ $SECONDS -lt $deadline ]; do
        ip netns exec "$NS_M" "$EMBER" submit --master "ember://$IP_M:$port" \
            "${SECRET_ARGS[@]}" --status "$driver" >"$T/$name-status.out" 2>&1
        state=$(grep -Eo 'SUBMITTED|RUNNING|RELAUNCHING|FINISHED|FAILED|KILLED|ERROR|UNKNOWN' \
            "$T/$name-status.out" | tail -1)
        case $state in FINISHED | FAILED | KILLED | ERROR) break ;; esac
        sleep 0.2
    done
    [ $SECONDS -ge $deadline ] && state=TIMEOUT
    dworker=$(grep -Eo 'worker-[0-9]+-[^ ]*-[0-9]+' "$T/$name-status.out" | head -1)
}
# cluster_example NAME VERIFY_KIND OUT VERIFY_ARGS... -- PROGRAM ARGS...: the driver FINISHED on
# a worker (its directory there), the output is right, and the application's executors ran on
# both workers. (The driver runs at the default log level here, so no fetcher lines: the
# crossing of shuffle blocks is checked in client mode.)
cluster_example()
{
    local name=$1 kind=$2 out=$3
    shift 3
    local vargs=()
    while [ "$1" != -- ]; do vargs+=("$1") && shift; done
    shift
    submit_cluster "$name" 7078 "$@"
    if [ "$state" != FINISHED ]; then
        fail "$name: driver '$driver' ended $state"
        sed 's/^/    | /' "$T/$name-submit.out" "$T/$name-submit.err" "$T/$name-status.out" \
            2>/dev/null | head -10
        local d
        for d in "$T"/c2-w?/"$driver"/stderr; do [ -f "$d" ] && sed 's/^/    | /' "$d" | head -5; done
        return
    fi
    local wd=
    [ -n "$dworker" ] && [ "${dworker##*-}" = "$c2_w1" ] && wd=c2-w1
    [ -n "$dworker" ] && [ "${dworker##*-}" = "$c2_w2" ] && wd=c2-w2
    if [ -n "$wd" ] && [ -f "$T/$wd/$driver/stderr" ]; then
        pass "$name: driver $driver FINISHED on $wd"
    else
        fail "$name: driver $driver FINISHED, but not on a known worker ('$dworker')"
    fi
    verify "$name" "$kind" "$out" "${vargs[@]}"
    # The application the driver registered: the one registered while the driver ran.
    local app
    app=$(sed -n "/launching driver $driver /,/driver $driver .*FINISHED/p" "$T/m2.log" |
        sed -n 's/.*registered application \(app-[^ ]*\) .*/\1/p' | head -1)
    if [ -n "$app" ] && ls "$T/c2-w1/$app"/*/stderr >/dev/null 2>&1 &&
        ls "$T/c2-w2/$app"/*/stderr >/dev/null 2>&1; then
        pass "$name: executors of $app ran on w1 and w2"
    else
        fail "$name: executors of application '$app' ran on w1 and w2"
        grep -h "$app\|$driver" "$T/m2.log" | sed 's/^/    | /' | head
    fi
}
if "$EMBER" submit --help 2>&1 | grep -q "unknown command"; then
    echo "# cluster deploy mode: ember submit not available: skipped"
else
    start_master m2 7078
    # A cluster-mode driver takes a core and ember.driver.memory (1g) of the worker it runs
    # on: 2 cores and 2g each leave room for an executor on both.
    WORKER_MEMORY=2g
    start_worker c2-w1 "$NS_W1" "$IP_W1" 7078 2
    c2_w1=$wpid
    registered "$T/m2.log" c2-w1 "$IP_W1" "$wpid"
    start_worker c2-w2 "$NS_W2" "$IP_W2" 7078 2
    c2_w2=$wpid
    registered "$T/m2.log" c2-w2 "$IP_W2" "$wpid"
    WORKER_MEMORY=1g
    cluster_example cluster-wordcount wordcount "$T/out-cl-wordcount" "$T/text" -- \
        "$EX/wordcount" "$T/text" "$T/out-cl-wordcount"
    cluster_example cluster-terasort terasort "$T/out-cl-terasort" "$T/ts" -- \
        "$EX/terasort" "$T/ts" "$T/out-cl-terasort"
    cluster_example cluster-pagerank pagerank "$T/out-cl-pagerank" 4 "$T/graph.txt" -- \
        "$EX/pagerank" --iterations 4 "$T/graph.txt" "$T/out-cl-pagerank"
    cluster_example cluster-join join "$T/out-cl-join" "$T/left.txt" "$T/right.txt" -- \
        "$EX/join" "$T/left.txt" "$T/right.txt" "$T/out-cl-join"
    netns_kill_all
fi

# ---- 3: a worker joining mid-application ---------------------------------------------------------
if build_prog multihost_app "$EMBER_SRC/tests/e2e/multihost_app.c"; then
    start_master m3 7079
    start_worker late-w1 "$NS_W1" "$IP_W1" 7079 1
    registered "$T/m3.log" late-w1 "$IP_W1" "$wpid"
    GATE=$T/gate
    PARTS=24
    N=200000
    # In the background (its exit status goes to late.rc), so the test can act during the job.
    (
        ip netns exec "$NS_M" env EMBER_LOG_LEVEL=debug timeout -k 5 150 "$T/multihost_app" \
            --master "ember://$IP_M:7079" --conf "ember.driver.host=$IP_M" "$GATE" "$PARTS" \
            "$N" "$T/late.txt" >"$T/late.out" 2>"$T/late.err"
        echo $? >"$T/late.rc"
    ) &
    disown $!
    if wait_for "$T/late.err" "dag: job 0" 30 && wait_for "$T/late.err" "executor [0-9]+ registered from $IP_W1:" 5; then
        pass "late: the job runs on w1 alone (its tasks wait at the gate)"
    else
        fail "late: the job runs on w1 alone"
        show late
    fi
    start_worker late-w2 "$NS_W2" "$IP_W2" 7079 1
    registered "$T/m3.log" late-w2 "$IP_W2" "$wpid"
    if wait_for "$T/late.err" "executor [0-9]+ registered from $IP_W2:" 30; then
        pass "late: the running application gets an executor on the new worker"
    else
        fail "late: the running application gets an executor on the new worker"
        tail -5 "$T/late-w2.log" | sed 's/^/    | /'
    fi
    touch "$GATE"
    rc=timeout
    wait_for "$T/late.rc" '^[0-9]+$' 170 && rc=$(cat "$T/late.rc")
    if [ "$rc" = 0 ]; then
        if $PY - "$N" "$PARTS" "$T/late.txt" "$IP_W1" "$IP_W2" >"$T/late.diff" 2>&1 <<'PYEOF'; then
import sys
n, parts, path, w1, w2 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
want = {}
for x in range(n):
    want[str(x % 101)] = want.get(str(x % 101), 0) + x * x
got, hosts = {}, {}
for line in open(path):
    k, v = line.rstrip("\n").split("\t")
    if k.startswith("host="):
        hosts[k[5:]] = int(v)
    else:
        got[k] = int(v)
bad = [] if got == want else [f"sums differ: {len(got)} keys, e.g. "
                              f"{[(k, got.get(k), want[k]) for k in want if got.get(k) != want[k]][:3]}"]
if sum(hosts.values()) != parts or not set(hosts) <= {w1, w2}:
    bad.append(f"tasks per host {hosts}: expected {parts} tasks on {w1} / {w2}")
if hosts.get(w2, 0) < 1:
    bad.append(f"no task ran on the late worker {w2}: {hosts}")
print("\n".join(bad) or f"tasks per host: {hosts}")
sys.exit(1 if bad else 0)
PYEOF
            pass "late: answer right, tasks ran on the late worker ($(cat "$T/late.diff"))"
        else
            fail "late: answer or task placement wrong"
            sed 's/^/    | /' "$T/late.diff" | head
        fi
        app=$(app_of late)
        if ran_on late "$app" late-w2 "$IP_W2"; then
            pass "late: an executor of the application ran in w2's work directory"
        else
            fail "late: an executor of the application ran in w2's work directory"
        fi
    else
        fail "late: exit status $rc" && show late
    fi
    netns_kill_all
fi

# ---- 6: authentication ---------------------------------------------------------------------------
SECRET_ARGS=(--conf ember.authenticate.secret=multi-host-S3cret)
start_master m4 7080
start_worker auth-w1 "$NS_W1" "$IP_W1" 7080 1
registered "$T/m4.log" auth-w1 "$IP_W1" "$wpid"
start_worker auth-w2 "$NS_W2" "$IP_W2" 7080 1
registered "$T/m4.log" auth-w2 "$IP_W2" "$wpid"
examples auth 7080 auth-w1 auth-w2
# Every executor's block server of those applications required authentication (so the
# cross-host fetches above were authenticated ones).
nbs=$(cat "$T"/auth-w?/app-*/*/stderr 2>/dev/null | grep -c "block server listening on")
nauth=$(cat "$T"/auth-w?/app-*/*/stderr 2>/dev/null |
    grep -c "block server listening on .* (authentication on)")
if [ "$nbs" -ge 8 ] && [ "$nbs" -eq "$nauth" ]; then
    pass "with the secret, all $nbs block servers of the executors require authentication"
else
    fail "block servers requiring authentication: $nauth of $nbs"
fi
SECRET_ARGS=(--conf ember.authenticate.secret=wrong)
start_worker auth-bad "$NS_W2" "$IP_W2" 7080 1
bad=$wpid
if wait_for "$T/m4.log" "closing connection from $IP_W2:[0-9]+: .*authentication" 20; then
    pass "a worker in w2 with a wrong secret is refused (master log)"
else
    fail "a worker in w2 with a wrong secret is refused (master log)"
    tail -5 "$T/m4.log" | sed 's/^/    | /'
fi
if grep -Eq "registered worker worker-[0-9]+-.*-$bad from" "$T/m4.log"; then
    fail "the worker with a wrong secret never registers"
else
    pass "the worker with a wrong secret never registers"
fi
SECRET_ARGS=()

# ---- sanitizer reports (builds with EMBER_SANITIZE / EMBER_TSAN) ---------------------------------
# Drivers, daemons and executors of every host wrote their stderr under $T (*.log, *.err, and
# the workers' <app>/<exec>/stderr and <driver>/stderr).
reports=$(find "$T" -type f \( -name '*.log' -o -name '*.err' -o -name stderr \) -exec \
    grep -lE "ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:" {} + |
    sed "s|^$T/||")
if [ -z "$reports" ]; then pass "no sanitizer report in any process's log"; else
    fail "sanitizer reports in: $(echo $reports)"
fi

# ---- nothing left behind -------------------------------------------------------------------------
netns_teardown
left=$(netns_leftovers)
if [ -z "$left" ]; then pass "namespaces and their processes removed"; else
    fail "left behind: $left"
fi
if [ "$(ip -o link show | cut -d: -f2 | sort)" = "$root_links" ]; then
    pass "the root namespace's links are as they were"
else
    fail "the root namespace's links changed"
    diff <(echo "$root_links") <(ip -o link show | cut -d: -f2 | sort) | sed 's/^/    | /'
fi
finish
