#!/usr/bin/env bash
# End-to-end: master recovery (ember.deploy.recoveryMode=FILESYSTEM) with real `ember master`
# and `ember worker` processes on 127.0.0.1. Two workers, started with the master list
# ember://127.0.0.1:P1,127.0.0.1:P2; a client-mode word count (tests/e2e/recovery_app.c, built
# here) whose map tasks hold at a gate file; a supervised cluster-mode driver
# (tests/e2e/submit_app.c sleep):
#   1. kill -9 of the master mid-job, restarted on P1 with the same directory: it recovers,
#      the workers and the application come back (its JSON status lists them, the
#      application's executors are the same ones), nothing is launched again, the cluster
#      driver is still RUNNING on its worker (same process) and --status answers;
#   2. kill -9 again, a new master on P2 with the same directory: the workers and the
#      application move to it (the list in their URL), same checks;
#   3. the gate opens: the job finishes with the reference answer (reference.py), no
#      executor was ever replaced (the driver's log, the workers' directories);
#   4. without recovery mode a restarted master knows nothing, as before: it refuses the
#      application's re-registration, and the job still finishes on its executors.
# Every wait is bounded; every process started here is killed on exit.
. "$(dirname "$0")/lib.sh"
need_file "$EMBER"

pids=()
cleanup()
{
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    # processes of killed workers: the sleeping driver and the executors (marker files)
    for f in "$T"/pids*; do
        [ -f "$f" ] && while read -r p; do kill -9 "$p" 2>/dev/null; done <"$f"
    done
    for f in "$T"/gate*.waiting.*; do
        [ -f "$f" ] && kill -9 "${f##*.}" 2>/dev/null
    done
}
trap cleanup EXIT

APP=$T/recovery_app
SLEEPER=$T/submit_app
if cc ${EMBER_CFLAGS:-} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$EMBER_SRC/include" \
    "$EMBER_SRC/tests/e2e/recovery_app.c" "$EMBER_BUILD/libember.a" \
    $(pkg-config --libs liblz4 libzstd libxxhash libsodium libuv) -lpthread -lm -o "$APP" \
    2>"$T/cc.err" &&
    cc ${EMBER_CFLAGS:-} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
        "$EMBER_SRC/tests/e2e/submit_app.c" -o "$SLEEPER" 2>>"$T/cc.err"; then
    pass "test applications compile"
else
    fail "test applications compile"
    show cc
    finish
fi

check() { if wait_for "$2" "$3" "${4:-20}"; then pass "$1"; else fail "$1" && sed 's/^/    | /' "$2" | tail -20; fi; }
absent() { if grep -Eq -- "$3" "$2" 2>/dev/null; then fail "$1" && grep -E -- "$3" "$2" | sed 's/^/    | /' | head; else pass "$1"; fi; }
FAST=(--conf ember.worker.timeout=4s --conf ember.worker.heartbeatInterval=300ms)
# The masters' worker timeout is also the recovery's bound: room for slow (sanitizer) builds.
MFAST=(--conf ember.worker.timeout=10s)
REC=$T/recovery
RECOVERY=(--conf ember.deploy.recoveryMode=FILESYSTEM --conf "ember.deploy.recoveryDirectory=$REC")
start_master()
{
    local log=$1 port=$2
    shift 2
    EMBER_LOG_LEVEL=info "$EMBER" master --host 127.0.0.1 --port "$port" \
        --conf "ember.local.dir=$T/mstore" "${MFAST[@]}" "$@" 2>"$log" &
    mpid=$!
    disown "$mpid"
    pids+=("$mpid")
}
start_worker()
{
    local log=$1 url=$2 dir=$3
    EMBER_LOG_LEVEL=info "$EMBER" worker --master "$url" --cores 2 --memory 2g --host 127.0.0.1 \
        --work-dir "$dir" "${FAST[@]}" 2>"$log" &
    wpid=$!
    disown "$wpid"
    pids+=("$wpid")
}
# start_app NAME URL OUT GATE: the word count in client mode through ember submit; sets $apid
start_app()
{
    local name=$1 url=$2 out=$3 gate=$4
    EMBER_LOG_LEVEL=info "$EMBER" submit --master "$url" --executor-cores 1 \
        --total-executor-cores 2 --executor-memory 256m "$APP" "$IN" "$out" "$gate" \
        >"$T/$name.out" 2>"$T/$name.err" &
    apid=$!
    pids+=("$apid")
}
# json URL FILE: ember master --status into FILE; $rc
json() { "$EMBER" master --status "$1" >"$2" 2>"$2.err"; rc=$?; }
# jq_py FILE EXPR: a Python expression over the JSON object `s`, printed
jq_py() { $PY -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }
# status ID URL: ember submit --status; sets $st, $sworker
status()
{
    "$EMBER" submit --master "$2" --status "$1" >"$T/status.out" 2>&1
    st=$(sed -n 's/^state: //p' "$T/status.out")
    sworker=$(sed -n 's/^worker: //p' "$T/status.out")
}
wait_state()
{
    local deadline=$((SECONDS + ${4:-30}))
    while [ $SECONDS -lt $deadline ]; do
        status "$1" "$2"
        [ "$st" = "$3" ] && return 0
        sleep 0.2
    done
    return 1
}

IN=$T/in.txt
"$EMBER" gen text --size 2m --seed 11 "$IN" 2>"$T/gen.err" || fail "ember gen text"

P1=$(free_port)
P2=$(free_port)
while [ "$P2" = "$P1" ]; do P2=$(free_port); done
LIST=ember://127.0.0.1:$P1,127.0.0.1:$P2

start_master "$T/m1.log" "$P1" "${RECOVERY[@]}"
m1=$mpid
check "master with FILESYSTEM recovery starts" "$T/m1.log" "master listening on 127.0.0.1:$P1"
check "an empty journal: ALIVE at once" "$T/m1.log" "recovery mode FILESYSTEM: journal in $REC, 0 records .* the master is ALIVE"
start_worker "$T/w1.log" "$LIST" "$T/w1"
w1=$wpid
start_worker "$T/w2.log" "$LIST" "$T/w2"
w2=$wpid
check "worker 1 registers" "$T/m1.log" "registered worker worker-[0-9]+-.*-$w1 from"
check "worker 2 registers" "$T/m1.log" "registered worker worker-[0-9]+-.*-$w2 from"
wid1=$(sed -n "s/.*registered worker \(worker-[^ ]*-$w1\) from.*/\1/p" "$T/m1.log" | head -1)
wid2=$(sed -n "s/.*registered worker \(worker-[^ ]*-$w2\) from.*/\1/p" "$T/m1.log" | head -1)

# a supervised cluster-mode driver that sleeps
"$EMBER" submit --master "$LIST" --deploy-mode cluster --supervise --driver-memory 128m \
    "$SLEEPER" sleep "$T/pids-driver" >"$T/sub.out" 2>"$T/sub.err"
did=$(head -1 "$T/sub.out")
if [[ "$did" =~ ^driver-[0-9]{14}-[0-9]{4}$ ]] && wait_state "$did" "$LIST" RUNNING 30 &&
    wait_for "$T/pids-driver" "^[0-9]+$" 10; then
    pass "supervised cluster driver RUNNING ($did on $sworker)"
else
    fail "supervised cluster driver RUNNING ('$did', state '$st')"
    show sub
fi
dworker=$sworker
dpid=$(head -1 "$T/pids-driver" 2>/dev/null)
if ls "$REC"/binaries/ 2>/dev/null | grep -qx "$(sha256sum "$SLEEPER" | cut -c1-64)"; then
    pass "the driver's binary is kept in the recovery directory"
else
    fail "the driver's binary is kept in the recovery directory"
fi

# the client-mode application, held at the gate once its executors run tasks
GATE=$T/gate1
start_app app "$LIST" "$T/out1" "$GATE"
app1=$apid
check "application registers" "$T/app.out" "^application app-[0-9]{14}-[0-9]{4}$" 30
aid=$(sed -n 's/^application //p' "$T/app.out")
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ] && [ "$(ls "$GATE".waiting.* 2>/dev/null | wc -l)" -lt 2 ]; do sleep 0.1; done
if [ "$(ls "$GATE".waiting.* 2>/dev/null | wc -l)" -eq 2 ]; then
    pass "tasks run on two executors, held at the gate"
else
    fail "tasks run on two executors, held at the gate"
    sed 's/^/    | /' "$T/app.err" | tail
fi
ls "$GATE".waiting.* 2>/dev/null | sed 's/.*\.//' >"$T/pids-executors"
json "ember://127.0.0.1:$P1" "$T/before.json"
execs_before=$(jq_py "$T/before.json" "sorted((e['id'], e['worker']) for a in s['activeapps'] if a['id']=='$aid' for e in a['executors'])")
if [ "$rc" -eq 0 ] && [ "$(jq_py "$T/before.json" "len([a for a in s['activeapps'] if a['id']=='$aid' and len(a['executors'])==2])")" = 1 ]; then
    pass "the master's JSON lists the application with 2 executors: $execs_before"
else
    fail "the master's JSON lists the application with 2 executors (rc $rc)"
    sed 's/^/    | /' "$T/before.json" "$T/before.json.err"
fi
for kind in worker app driver; do
    if ls "$REC"/${kind}_* >/dev/null 2>&1; then pass "journal holds ${kind} records"; else fail "journal holds ${kind} records"; fi
done

# ---- 1. kill -9 mid-job, restart on the same port and directory ------------------------------
kill -9 "$m1"
check "worker notices the loss and keeps its executors" "$T/w1.log" "lost connection to master ember://127.0.0.1:$P1 .*executors and drivers keep running"
check "the application notices the loss and keeps running" "$T/app.err" "lost the connection to master ember://127.0.0.1:$P1 .*keeps running"
sleep 1
start_master "$T/m1b.log" "$P1" "${RECOVERY[@]}"
check "restarted master recovers from the journal" "$T/m1b.log" "RECOVERING from the journal: 2 workers, 1 applications, 1 drivers; waiting up to 10000 ms"
check "recovery completes with everyone back" "$T/m1b.log" "recovery complete: 2 workers and 1 applications back, 0 workers and 0 applications removed; the master is ALIVE" 30
check "the application re-registered with its id" "$T/m1b.log" "application $aid \(recovery\) re-registered by its driver"
check "the driver was taken back on its worker" "$T/m1b.log" "recovered driver $did .*RUNNING on worker $dworker"
json "ember://127.0.0.1:$P1" "$T/after1.json"
if [ "$(jq_py "$T/after1.json" "s['status']")" = ALIVE ] &&
    [ "$(jq_py "$T/after1.json" "sorted(w['id'] for w in s['workers'] if w['state']=='ALIVE')")" = "$(printf '%s\n' "$wid1" "$wid2" | sort | $PY -c 'import sys; print(sorted(l.strip() for l in sys.stdin))')" ]; then
    pass "the restarted master's JSON lists both workers ALIVE"
else
    fail "the restarted master's JSON lists both workers ALIVE"
    sed 's/^/    | /' "$T/after1.json" "$T/after1.json.err"
fi
execs_after=$(jq_py "$T/after1.json" "sorted((e['id'], e['worker']) for a in s['activeapps'] if a['id']=='$aid' and a['state']=='RUNNING' for e in a['executors'])")
if [ -n "$execs_before" ] && [ "$execs_after" = "$execs_before" ]; then
    pass "the application is back with the same executors: $execs_after"
else
    fail "the application is back with the same executors ('$execs_after' vs '$execs_before')"
fi
absent "nothing launched again" "$T/m1b.log" "launching (executor|driver)"
if wait_state "$did" "ember://127.0.0.1:$P1" RUNNING 10 && [ "$sworker" = "$dworker" ] &&
    [ "$(wc -l <"$T/pids-driver")" -eq 1 ] && kill -0 "$dpid" 2>/dev/null; then
    pass "--status after the restart: the driver is RUNNING on $sworker, same process"
else
    fail "--status after the restart (state '$st', worker '$sworker', pids $(wc -l <"$T/pids-driver"))"
    sed 's/^/    | /' "$T/status.out"
fi

# ---- 2. kill -9 again, a new master on P2 with the same directory ------------------------------
m1b=$mpid
kill -9 "$m1b"
sleep 0.5
start_master "$T/m2.log" "$P2" "${RECOVERY[@]}"
check "master on P2 recovers from the same journal" "$T/m2.log" "RECOVERING from the journal: 2 workers, 1 applications, 1 drivers"
check "recovery on P2 completes with everyone back" "$T/m2.log" "recovery complete: 2 workers and 1 applications back" 30
check "worker 1 moved to P2" "$T/w1.log" "registered with master ember://127.0.0.1:$P2 as $wid1"
check "worker 2 moved to P2" "$T/w2.log" "registered with master ember://127.0.0.1:$P2 as $wid2"
check "the application moved to P2" "$T/app.err" "application $aid re-registered with master ember://127.0.0.1:$P2"
json "$LIST" "$T/after2.json"
execs_after2=$(jq_py "$T/after2.json" "sorted((e['id'], e['worker']) for a in s['activeapps'] if a['id']=='$aid' for e in a['executors'])")
if [ "$(jq_py "$T/after2.json" "s['url']")" = "ember://127.0.0.1:$P2" ] && [ "$execs_after2" = "$execs_before" ] &&
    [ "$(jq_py "$T/after2.json" "s['aliveworkers']")" = 2 ]; then
    pass "the list URL reaches the master on P2: both workers, the same executors"
else
    fail "the list URL reaches the master on P2 ('$execs_after2')"
    sed 's/^/    | /' "$T/after2.json" "$T/after2.json.err"
fi
absent "nothing launched again on P2" "$T/m2.log" "launching (executor|driver)"
if wait_state "$did" "$LIST" RUNNING 10 && [ "$sworker" = "$dworker" ] && kill -0 "$dpid" 2>/dev/null; then
    pass "the cluster driver is still RUNNING on $sworker"
else
    fail "the cluster driver is still RUNNING (state '$st', worker '$sworker')"
fi

# ---- 3. the job finishes with the right answer and its first executors --------------------------
touch "$GATE"
deadline=$((SECONDS + 120))
while [ $SECONDS -lt $deadline ] && kill -0 "$app1" 2>/dev/null; do sleep 0.2; done
wait "$app1"
arc=$?
if [ "$arc" -eq 0 ]; then pass "the job finishes (exit 0)"; else
    fail "the job finishes (exit $arc)"
    sed 's/^/    | /' "$T/app.err" | tail -20
fi
if $PY "$EMBER_SRC/tests/e2e/reference.py" wordcount "$T/out1" "$IN" >"$T/ref.out" 2>&1; then
    pass "word count output equals the reference"
else
    fail "word count output equals the reference"
    sed 's/^/    | /' "$T/ref.out" | head
fi
granted=$(sed -n 's/.*executor \([0-9]*\) granted on worker.*/\1/p' "$T/app.err" | sort -n | tr '\n' ' ')
if [ "$granted" = "0 1 " ]; then pass "the driver was granted executors 0 and 1 only"; else
    fail "the driver was granted executors 0 and 1 only (got '$granted')"
fi
dirs=$(ls -d "$T"/w[12]/"$aid"/* 2>/dev/null | sed 's|.*/||' | sort -n | tr '\n' ' ')
if [ "$dirs" = "0 1 " ]; then pass "the workers ran executors 0 and 1 only"; else
    fail "the workers ran executors 0 and 1 only (dirs '$dirs')"
fi
absent "the driver lost no executor" "$T/app.err" "lost executor|executor [0-9]+ (removed|lost)"
check "the master ends the application" "$T/m2.log" "application $aid \(recovery\) FINISHED" 20
if [ ! -e "$REC/app_$aid" ]; then pass "its journal record is removed"; else fail "its journal record is removed"; fi

run kill "$EMBER" submit --master "$LIST" --kill "$did"
if [ "$rc" -eq 0 ] && ! kill -0 "$dpid" 2>/dev/null; then pass "the recovered driver is killed on request"; else
    fail "the recovered driver is killed on request (rc $rc)"
    show kill
fi

# ---- 4. without recovery mode: as before ----------------------------------------------------------
P3=$(free_port)
start_master "$T/m3.log" "$P3"
m3=$mpid
check "master without recovery starts" "$T/m3.log" "master listening on 127.0.0.1:$P3"
start_worker "$T/w3.log" "ember://127.0.0.1:$P3" "$T/w3"
check "worker 3 registers" "$T/m3.log" "registered worker worker-[0-9]+-.*-$wpid from"
GATE2=$T/gate2
start_app app2 "ember://127.0.0.1:$P3" "$T/out2" "$GATE2"
app2=$apid
check "application 2 registers" "$T/app2.out" "^application app-" 30
aid2=$(sed -n 's/^application //p' "$T/app2.out")
wait_for "$T/m3.log" "launching executor 1 of $aid2" 20
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ] && [ "$(ls "$GATE2".waiting.* 2>/dev/null | wc -l)" -lt 1 ]; do sleep 0.1; done
kill -9 "$m3"
sleep 0.5
start_master "$T/m3b.log" "$P3"
check "the new master knows nothing and refuses the application" "$T/m3b.log" "refused the re-registration of $aid2 .*unknown to this master" 30
check "the driver hears it and goes on" "$T/app2.err" "does not take application $aid2 back"
check "worker 3 registers with the new master" "$T/m3b.log" "registered worker worker-[0-9]+-.*-$wpid from"
json "ember://127.0.0.1:$P3" "$T/m3b.json"
if [ "$(jq_py "$T/m3b.json" "s['recoverymode'], len(s['activeapps']), s['aliveworkers']")" = "NONE 0 1" ]; then
    pass "its status: no recovery, no application, the worker registered again"
else
    fail "its status: no recovery, no application, the worker registered again"
    sed 's/^/    | /' "$T/m3b.json"
fi
touch "$GATE2"
deadline=$((SECONDS + 120))
while [ $SECONDS -lt $deadline ] && kill -0 "$app2" 2>/dev/null; do sleep 0.2; done
wait "$app2"
arc=$?
if [ "$arc" -eq 0 ] && $PY "$EMBER_SRC/tests/e2e/reference.py" wordcount "$T/out2" "$IN" >"$T/ref2.out" 2>&1; then
    pass "the job still finishes on its executors with the reference answer"
else
    fail "the job still finishes on its executors (exit $arc)"
    sed 's/^/    | /' "$T/app2.err" "$T/ref2.out" | tail -20
fi

run badurl "$EMBER" worker --master "ember://127.0.0.1:$P1,nope"
if [ "$rc" -eq 2 ] && grep -q "master URL 'ember://127.0.0.1:$P1,nope': 'nope' is not HOST:PORT" "$T/badurl.err"; then
    pass "a bad master list: exit 2 naming the entry"
else
    fail "a bad master list (rc $rc)"
    show badurl
fi
run badrec "$EMBER" master --host 127.0.0.1 --port 0 --conf ember.deploy.recoveryMode=FILESYSTEM
if [ "$rc" -eq 1 ] && grep -q "ember.deploy.recoveryDirectory" "$T/badrec.err"; then
    pass "FILESYSTEM without a directory: exit 1 naming the option"
else
    fail "FILESYSTEM without a directory (rc $rc)"
    show badrec
fi
cleanup # before finish removes $T and the pid files cleanup reads
finish
