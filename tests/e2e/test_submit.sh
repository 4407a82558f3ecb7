#!/usr/bin/env bash
# End-to-end: `ember submit` with real `ember master` / `ember worker` processes on 127.0.0.1
# (two workers, each with its --work-dir in $T), the wordcount example and a tiny test driver
# (tests/e2e/submit_app.c, built here):
#   - client mode: wordcount under ember://, local[2] and local-cluster[2,1,512] gives the
#     reference answer (reference.py); the options reach the program as EMBER_* variables,
#     arguments after BINARY are the program's; a #! script runs;
#   - cluster mode: wordcount's driver runs on a worker (--status polled until FINISHED), the
#     output is the reference; its stdout/stderr are in <work-dir>/<driver-id>/ of a worker; the
#     driver's environment (EMBER_DRIVER_ID, EMBER_DRIVER_HOST, the submitted options) and cwd;
#   - --supervise: a driver that fails once is relaunched and FINISHED; without it, FAILED and
#     never relaunched; a supervised driver whose worker dies (kill -9) runs again elsewhere;
#   - --kill of a long-running driver: KILLED, its process gone;
#   - authentication: with a secret on the cluster, a submit without it is refused, with it
#     the driver runs and gets the worker's secret;
#   - bad input: missing binary, non-executable file, text file without #!, a directory,
#     cluster mode with a local master, unknown --status / --kill id, unknown option.
# Every wait is bounded; every process started here is killed on exit.
. "$(dirname "$0")/lib.sh"
need_file "$EMBER"
need_file "$EX/wordcount"

pids=()
cleanup()
{
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    # drivers whose worker was killed outlive it: found by the pid files of submit_app sleep
    for f in "$T"/pids*; do
        [ -f "$f" ] && while read -r p; do kill -9 "$p" 2>/dev/null; done <"$f"
    done
}
trap cleanup EXIT

APP=$T/submit_app
if cc ${EMBER_CFLAGS:-} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
    "$EMBER_SRC/tests/e2e/submit_app.c" -o "$APP" 2>"$T/cc.err"; then
    pass "test driver compiles"
else
    fail "test driver compiles"
    show cc
    finish
fi

check() { if wait_for "$2" "$3" "${4:-20}"; then pass "$1"; else fail "$1" && sed 's/^/    | /' "$2" | tail -20; fi; }
# env_of FILE NAME: the value of NAME in an env file of submit_app (empty when absent)
env_of() { sed -n "s/^$2=//p" "$1" | head -1; }
FAST=(--conf ember.worker.timeout=4s --conf ember.worker.heartbeatInterval=300ms)
# The masters keep submitted binaries under ember.local.dir: in $T, since they die by SIGKILL.
start_master()
{
    local log=$1 port=$2
    shift 2
    "$EMBER" master --host 127.0.0.1 --port "$port" --conf "ember.local.dir=$T/mstore" "$@" \
        2>"$log" &
    mpid=$!
    disown "$mpid"
    pids+=("$mpid")
}
start_worker()
{
    local log=$1 port=$2 dir=$3
    shift 3
    "$EMBER" worker --master "ember://127.0.0.1:$port" --cores 2 --memory 2g --host 127.0.0.1 \
        --work-dir "$dir" "$@" 2>"$log" &
    wpid=$!
    disown "$wpid"
    pids+=("$wpid")
}
# status ID: the --status answer in $T/status.out; sets $st (the state) and $rc
status()
{
    "$EMBER" submit --master "$M" "${SUBMIT_OPTS[@]}" --status "$1" >"$T/status.out" 2>&1
    rc=$?
    st=$(sed -n 's/^state: //p' "$T/status.out")
}
# wait_state ID STATE [SECONDS]: polls --status until STATE; 1 at another final state or timeout
wait_state()
{
    local deadline=$((SECONDS + ${3:-60}))
    while [ $SECONDS -lt $deadline ]; do
        status "$1"
        [ "$st" = "$2" ] && return 0
        case "$st" in FINISHED | FAILED | KILLED | ERROR) return 1 ;; esac
        sleep 0.2
    done
    return 1
}
# submit_cluster NAME ARGS...: ember submit --deploy-mode cluster; sets $id (stdout) and $rc
submit_cluster()
{
    local name=$1
    shift
    run "$name" "$EMBER" submit --master "$M" "${SUBMIT_OPTS[@]}" --deploy-mode cluster "$@"
    id=$(head -1 "$T/$name.out")
}
SUBMIT_OPTS=()

P=$(free_port)
M=ember://127.0.0.1:$P
start_master "$T/m.log" "$P" "${FAST[@]}"
check "master starts" "$T/m.log" "master listening on 127.0.0.1:$P"
start_worker "$T/w1.log" "$P" "$T/w1" "${FAST[@]}"
w1=$wpid
start_worker "$T/w2.log" "$P" "$T/w2" "${FAST[@]}"
w2=$wpid
check "worker 1 registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w1 from"
check "worker 2 registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w2 from"

IN=$T/in.txt
"$EMBER" gen text --size 300k --seed 7 "$IN" 2>"$T/gen.err" || fail "ember gen text"
ref() { $PY "$EMBER_SRC/tests/e2e/reference.py" wordcount "$1" "$IN" >"$T/ref.out" 2>&1; }

# ---- client mode ----------------------------------------------------------------------------------
for master in "$M" "local[2]" "local-cluster[2,1,512]"; do
    tag=client-$(printf '%s' "$master" | tr -c 'a-z0-9' '_')
    out=$T/$tag
    if expect_ok "$tag" "$EMBER" submit --master "$master" \
        --executor-memory 256m "$EX/wordcount" "$IN" "$out"; then
        if ref "$out"; then pass "client mode on $master: reference answer"; else
            fail "client mode on $master: reference answer"
            sed 's/^/    | /' "$T/ref.out" | head
        fi
    fi
done
if expect_ok "client env" "$EMBER" submit --master "local[2]" --name envtest \
    --executor-memory 300m --executor-cores 3 --total-executor-cores 5 --driver-memory 700m \
    --driver-cores 2 --conf ember.task.maxFailures=7 "$APP" env "$T/env1" a --conf x=y; then
    ok=1
    for kv in EMBER_MASTER=local[2] EMBER_APP_NAME=envtest EMBER_EXECUTOR_MEMORY=300m \
        EMBER_EXECUTOR_CORES=3 EMBER_CORES_MAX=5 EMBER_DRIVER_MEMORY=700m EMBER_DRIVER_CORES=2 \
        EMBER_TASK_MAXFAILURES=7 arg=a arg=--conf arg=x=y "cwd=$(pwd)"; do
        grep -qxF -- "$kv" "$T/env1" || { echo "    | missing $kv" && ok=0; }
    done
    [ "$(grep -c '^arg=' "$T/env1")" -eq 3 ] || { echo "    | not 3 arguments" && ok=0; }
    if [ $ok -eq 1 ]; then pass "client mode: options as EMBER_* variables, ARGS untouched"; else
        fail "client mode: options as EMBER_* variables, ARGS untouched"
        sed 's/^/    | /' "$T/env1"
    fi
fi
printf '#!/bin/sh\necho "script ran with $1 on $EMBER_MASTER" >"%s"\n' "$T/script.out" >"$T/script.sh"
chmod 755 "$T/script.sh"
if expect_ok "client script" "$EMBER" submit --master "local[1]" "$T/script.sh" hello &&
    grep -qx "script ran with hello on local\[1\]" "$T/script.out"; then
    pass "client mode runs a #! script"
else
    fail "client mode runs a #! script"
fi

# ---- cluster mode -----------------------------------------------------------------------------------
submit_cluster c1 --driver-memory 256m --executor-memory 256m "$EX/wordcount" "$IN" "$T/cluster1"
if [ "$rc" -eq 0 ] && [[ "$id" =~ ^driver-[0-9]{14}-[0-9]{4}$ ]]; then
    pass "cluster mode prints the driver id ($id)"
else
    fail "cluster mode prints the driver id (rc $rc, '$id')"
    show c1
fi
if wait_state "$id" FINISHED 90; then pass "cluster wordcount FINISHED"; else
    fail "cluster wordcount FINISHED (state '$st')"
    sed 's/^/    | /' "$T/status.out"
fi
if grep -qx "exit_code: 0" "$T/status.out" && grep -Eq "^worker: worker-[0-9]+-" "$T/status.out"; then
    pass "--status names the worker and exit code 0"
else
    fail "--status names the worker and exit code 0"
    sed 's/^/    | /' "$T/status.out"
fi
if ref "$T/cluster1"; then pass "cluster mode: reference answer"; else
    fail "cluster mode: reference answer"
    sed 's/^/    | /' "$T/ref.out" | head
fi
ddir=$(ls -d "$T"/w[12]/"$id" 2>/dev/null | head -1)
if [ -n "$ddir" ] && [ -f "$ddir/stdout" ] && [ -f "$ddir/stderr" ]; then
    pass "driver stdout and stderr in its worker's work dir ($ddir)"
else
    fail "driver stdout and stderr in a worker's work dir"
    ls -R "$T/w1" "$T/w2" | head -30 | sed 's/^/    | /'
fi
check "master fetched the binary into its store" "$T/m.log" "fetched binary [0-9a-f]{64} \([0-9]+ bytes\) from 127.0.0.1:"
if ls "$T"/mstore/ember-master-*/* 2>/dev/null | grep -q "$(sha256sum "$EX/wordcount" | cut -c1-64)$"; then
    pass "the master's store holds the binary under its SHA-256"
else
    fail "the master's store holds the binary under its SHA-256"
fi

submit_cluster c2 --name clusterenv --executor-memory 300m --driver-memory 128m \
    --conf ember.task.maxFailures=6 "$APP" env "$T/env2" x "y z"
if [ "$rc" -eq 0 ] && wait_state "$id" FINISHED 30; then pass "cluster env driver FINISHED"; else
    fail "cluster env driver FINISHED (rc $rc, state '$st')"
    show c2
fi
wdir=$(ls -d "$T"/w[12]/"$id" 2>/dev/null | head -1)
ok=1
for kv in "EMBER_DRIVER_ID=$id" EMBER_DRIVER_HOST=127.0.0.1 "EMBER_MASTER=$M" \
    EMBER_APP_NAME=clusterenv EMBER_EXECUTOR_MEMORY=300m EMBER_DRIVER_MEMORY=128m \
    EMBER_TASK_MAXFAILURES=6 EMBER_SUBMIT_DEPLOYMODE=cluster arg=x "arg=y z" "cwd=$wdir"; do
    grep -qxF -- "$kv" "$T/env2" 2>/dev/null || { echo "    | missing $kv" && ok=0; }
done
for absent in EMBER_EXECUTOR_MODE EMBER_DAEMON_ROLE EMBER_AUTHENTICATE_SECRET; do
    grep -q "^$absent=" "$T/env2" 2>/dev/null && { echo "    | unexpected $absent" && ok=0; }
done
if [ $ok -eq 1 ]; then pass "cluster driver's environment, arguments and cwd"; else
    fail "cluster driver's environment, arguments and cwd"
    sed 's/^/    | /' "$T/env2" 2>/dev/null
fi

# ---- --supervise ------------------------------------------------------------------------------------
submit_cluster s1 --supervise --driver-memory 128m "$APP" fail-once "$T/marker1"
if [ "$rc" -eq 0 ] && wait_state "$id" FINISHED 40; then pass "supervised driver relaunched and FINISHED"; else
    fail "supervised driver relaunched and FINISHED (rc $rc, state '$st')"
    show s1
fi
check "master relaunched it after a back-off" "$T/m.log" "driver $id .*supervised: relaunching it in 1000 ms \(exit code 1"
n=$(grep -Ec "launching driver $id " "$T/m.log")
if [ "$n" -eq 2 ] && cat "$T"/w[12]/"$id"/stderr 2>/dev/null | grep -q "created it, failing" &&
    cat "$T"/w[12]/"$id"/stdout 2>/dev/null | grep -q "found: succeeding"; then
    pass "two launches: the failing run's and the succeeding run's output kept"
else
    fail "two launches with both outputs (launches: $n)"
fi
submit_cluster s2 --driver-memory 128m "$APP" fail-once "$T/marker2"
if [ "$rc" -eq 0 ] && wait_state "$id" FAILED 30; then pass "unsupervised failing driver FAILED"; else
    fail "unsupervised failing driver FAILED (state '$st')"
fi
grep -qx "exit_code: 1" "$T/status.out" && pass "FAILED with exit code 1" || fail "FAILED with exit code 1"
sleep 2.5 # past the first back-off: nothing may relaunch it
status "$id"
n=$(grep -Ec "launching driver $id " "$T/m.log")
if [ "$st" = FAILED ] && [ "$n" -eq 1 ]; then pass "without --supervise it stays FAILED (one launch)"; else
    fail "without --supervise it stays FAILED (state $st, $n launches)"
fi

# ---- --kill -----------------------------------------------------------------------------------------
submit_cluster k1 --driver-memory 128m "$APP" sleep "$T/pids-kill"
if [ "$rc" -eq 0 ] && wait_state "$id" RUNNING 30 && wait_for "$T/pids-kill" "^[0-9]+$" 10; then
    pass "long-running driver RUNNING"
else
    fail "long-running driver RUNNING (state '$st')"
fi
dpid=$(head -1 "$T/pids-kill" 2>/dev/null)
run kill1 "$EMBER" submit --master "$M" --kill "$id"
if [ "$rc" -eq 0 ] && grep -qx "driver $id killed" "$T/kill1.out"; then pass "--kill returns 0 once killed"; else
    fail "--kill returns 0 once killed (rc $rc)"
    show kill1
fi
status "$id"
[ "$st" = KILLED ] && pass "state KILLED" || fail "state KILLED (got '$st')"
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ] && [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; do sleep 0.1; done
if [ -n "$dpid" ] && ! kill -0 "$dpid" 2>/dev/null; then pass "the killed driver's process is gone"; else
    fail "the killed driver's process is gone (pid '$dpid')"
fi
run kill2 "$EMBER" submit --master "$M" --kill "$id"
if [ "$rc" -eq 1 ] && grep -q "already ended: KILLED" "$T/kill2.err"; then pass "--kill of an ended driver: exit 1, says why"; else
    fail "--kill of an ended driver (rc $rc)"
    show kill2
fi

# ---- a supervised driver whose worker dies ---------------------------------------------------------
submit_cluster d1 --supervise --driver-memory 128m "$APP" sleep "$T/pids-dead"
wait_state "$id" RUNNING 30 && wait_for "$T/pids-dead" "^[0-9]+$" 10
first=$(sed -n 's/^worker: //p' "$T/status.out")
victim=$w1
grep -q "$first" "$T/w2.log" && victim=$w2
kill -9 "$victim"
deadline=$((SECONDS + 40))
moved=0
while [ $SECONDS -lt $deadline ]; do
    status "$id"
    now=$(sed -n 's/^worker: //p' "$T/status.out")
    if [ "$st" = RUNNING ] && [ "$now" != "$first" ]; then moved=1 && break; fi
    sleep 0.3
done
if [ $moved -eq 1 ]; then pass "supervised driver relaunched on the other worker after its worker died"; else
    fail "supervised driver relaunched after its worker died (state '$st', worker '$now')"
    grep "$id" "$T/m.log" | sed 's/^/    | /'
fi
check "master logs the loss" "$T/m.log" "driver $id .*relaunching it in 0 ms .*was lost"
run kill3 "$EMBER" submit --master "$M" --kill "$id"
[ "$rc" -eq 0 ] && pass "relaunched driver killed" || { fail "relaunched driver killed (rc $rc)" && show kill3; }

# ---- a supervised driver whose worker stops (SIGTERM) -------------------------------------------------
survivor=$w2
[ "$victim" = "$w2" ] && survivor=$w1
start_worker "$T/w4.log" "$P" "$T/w4" "${FAST[@]}"
w4=$wpid
check "worker 4 registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w4 from"
submit_cluster t1 --supervise --driver-memory 128m "$APP" sleep "$T/pids-stop"
wait_state "$id" RUNNING 30 && wait_for "$T/pids-stop" "^[0-9]+$" 10
first=$(sed -n 's/^worker: //p' "$T/status.out")
fpid=$(head -1 "$T/pids-stop")
stopped=$survivor
grep -q "$first" "$T/w4.log" && stopped=$w4
kill -TERM "$stopped"
deadline=$((SECONDS + 30))
moved=0
while [ $SECONDS -lt $deadline ]; do
    status "$id"
    now=$(sed -n 's/^worker: //p' "$T/status.out")
    if [ "$st" = RUNNING ] && [ "$now" != "$first" ]; then moved=1 && break; fi
    sleep 0.2
done
if [ $moved -eq 1 ]; then pass "supervised driver of a stopped worker runs again on the other one"; else
    fail "supervised driver of a stopped worker runs again (state '$st', worker '$now')"
    grep "$id" "$T/m.log" | sed 's/^/    | /'
fi
if [ -n "$fpid" ] && ! kill -0 "$fpid" 2>/dev/null; then pass "the stopped worker killed its driver"; else
    fail "the stopped worker killed its driver (pid '$fpid')"
fi
run kill4 "$EMBER" submit --master "$M" --kill "$id"
[ "$rc" -eq 0 ] && pass "its relaunch killed" || { fail "its relaunch killed (rc $rc)" && show kill4; }

# ---- authentication ---------------------------------------------------------------------------------
P2=$(free_port)
M2=ember://127.0.0.1:$P2
SEC=(--conf ember.authenticate.secret=S3cret)
start_master "$T/m2.log" "$P2" "${FAST[@]}" "${SEC[@]}"
check "second master (with a secret) starts" "$T/m2.log" "master listening on 127.0.0.1:$P2"
start_worker "$T/w3.log" "$P2" "$T/w3" "${FAST[@]}" "${SEC[@]}"
check "worker 3 registers" "$T/m2.log" "registered worker worker-[0-9]+-.*-$wpid from"
run nosecret "$EMBER" submit --master "$M2" --deploy-mode cluster "$APP" env "$T/env3"
if [ "$rc" -eq 1 ] && grep -q "$M2" "$T/nosecret.err" && [ ! -s "$T/nosecret.out" ]; then
    pass "a submit without the secret is refused, naming the master"
else
    fail "a submit without the secret is refused (rc $rc)"
    show nosecret
fi
M_SAVE=$M
M=$M2
export EMBER_AUTHENTICATE_SECRET=S3cret
submit_cluster a1 --driver-memory 128m "$APP" env "$T/env3"
if [ "$rc" -eq 0 ] && wait_state "$id" FINISHED 30; then pass "with the secret the driver runs"; else
    fail "with the secret the driver runs (rc $rc, state '$st')"
    show a1
fi
if grep -qx "EMBER_AUTHENTICATE_SECRET=S3cret" "$T/env3" 2>/dev/null; then pass "the driver gets its worker's secret"; else
    fail "the driver gets its worker's secret"
fi
unset EMBER_AUTHENTICATE_SECRET
M=$M_SAVE

# ---- bad input --------------------------------------------------------------------------------------
run missing "$EMBER" submit --master "local[1]" "$T/no-such-binary" a
if [ "$rc" -eq 1 ] && grep -q "application binary '$T/no-such-binary': No such file" "$T/missing.err"; then
    pass "missing binary: exit 1 naming it"
else
    fail "missing binary (rc $rc)"
    show missing
fi
cp "$APP" "$T/noexec" && chmod 644 "$T/noexec"
run noexec "$EMBER" submit --master "$M" --deploy-mode cluster "$T/noexec"
if [ "$rc" -eq 1 ] && grep -q "'$T/noexec' is not executable" "$T/noexec.err"; then
    pass "non-executable binary: exit 1 naming it"
else
    fail "non-executable binary (rc $rc)"
    show noexec
fi
printf 'just words\n' >"$T/text" && chmod 755 "$T/text"
run text "$EMBER" submit --master "local[1]" "$T/text"
if [ "$rc" -eq 1 ] && grep -q "'$T/text' is neither an ELF executable nor a #! script" "$T/text.err"; then
    pass "text file without #!: exit 1 naming it"
else
    fail "text file without #! (rc $rc)"
    show text
fi
run dir "$EMBER" submit --master "local[1]" "$T"
if [ "$rc" -eq 1 ] && grep -q "'$T' is not a regular file" "$T/dir.err"; then pass "a directory: exit 1"; else
    fail "a directory (rc $rc)"
    show dir
fi
run local "$EMBER" submit --master "local[2]" --deploy-mode cluster "$APP" env "$T/env4"
if [ "$rc" -eq 2 ] && grep -q "cluster deploy mode needs a standalone master" "$T/local.err" && [ ! -e "$T/env4" ]; then
    pass "cluster mode with a local master: exit 2, nothing run"
else
    fail "cluster mode with a local master (rc $rc)"
    show local
fi
run unknown "$EMBER" submit --master "$M" --status driver-20000101000000-9999
if [ "$rc" -eq 1 ] && grep -q "no driver driver-20000101000000-9999" "$T/unknown.err"; then
    pass "--status of an unknown id: exit 1"
else
    fail "--status of an unknown id (rc $rc)"
    show unknown
fi
run unknownkill "$EMBER" submit --master "$M" --kill driver-20000101000000-9999
if [ "$rc" -eq 1 ] && grep -q "no driver driver-20000101000000-9999" "$T/unknownkill.err"; then
    pass "--kill of an unknown id: exit 1"
else
    fail "--kill of an unknown id (rc $rc)"
    show unknownkill
fi
run badopt "$EMBER" submit --master "local[1]" --executor-memry 1g "$APP" fail
[ "$rc" -eq 2 ] && grep -q "unknown option '--executor-memry'" "$T/badopt.err" && pass "unknown option: exit 2" || { fail "unknown option (rc $rc)" && show badopt; }
run badval "$EMBER" submit --master "local[1]" --executor-cores many "$APP" fail
[ "$rc" -eq 2 ] && grep -q "executor" "$T/badval.err" && pass "bad option value: exit 2" || { fail "bad option value (rc $rc)" && show badval; }
run nomaster "$EMBER" submit --master "local[1]" --status driver-x
[ "$rc" -eq 2 ] && pass "--status with a local master: exit 2" || { fail "--status with a local master (rc $rc)" && show nomaster; }
run closed "$EMBER" submit --master "ember://127.0.0.1:$(free_port)" --deploy-mode cluster "$APP" fail
[ "$rc" -eq 1 ] && grep -q "cannot connect to master" "$T/closed.err" && pass "closed master port: exit 1" || { fail "closed master port (rc $rc)" && show closed; }
run help "$EMBER" submit --help
[ "$rc" -eq 0 ] && grep -q -- "--deploy-mode" "$T/help.out" && pass "--help" || fail "--help"
finish
