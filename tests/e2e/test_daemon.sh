#!/usr/bin/env bash
# End-to-end: `ember master --daemon` / `ember worker --daemon` and the cluster scripts
# (scripts/start-all.sh, stop-all.sh), with real processes on 127.0.0.1 (free ports picked by
# python3) and log/pid directories under the test's temporary directory.
#   - master --daemon returns 0 once listening; its pid file names a live process that accepts
#     connections on the port; a second start with the same pid file is refused (exit 1);
#   - worker --daemon registers (the master log names the pid of the worker's pid file);
#     SIGTERM stops it and removes its pid file; a stale pid file is replaced;
#   - master --daemon on a busy port exits non-zero with the error and leaves no pid file;
#   - start-all.sh with conf/workers = localhost starts master + worker; stop-all.sh stops both
#     and removes every pid file.
# Every wait is bounded; every process started here is killed on exit.
. "$(dirname "$0")/lib.sh"
need_file "$EMBER"

pids=()
cleanup()
{
    for f in "$T"/pids*/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
}
trap cleanup EXIT

# listening PORT: 0 when something accepts TCP connections on 127.0.0.1:PORT.
listening()
{
    $PY -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),2).close()' "$1" 2>/dev/null
}
# wait_gone PID [SECONDS]: polls until PID no longer exists (default 15 s).
wait_gone()
{
    local deadline=$((SECONDS + ${2:-15}))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}
verdict() { if [ "$2" = 0 ]; then pass "$1"; else fail "$1"; fi; }

USER_NAME=$(id -un)
HOST=$(uname -n)
PD=$T/pids
LD=$T/logs
DOPT=(--log-dir "$LD" --pid-dir "$PD")
MPID_FILE=$PD/ember-$USER_NAME-master-$HOST.pid
MLOG=$LD/ember-$USER_NAME-master-$HOST.log
WPID_FILE=$PD/ember-$USER_NAME-worker-1-$HOST.pid
FAST=(--conf ember.worker.timeout=2s --conf ember.worker.heartbeatInterval=300ms)

# ---- master --daemon --------------------------------------------------------------------------
P=$(free_port)
run m1 "$EMBER" master --daemon --host 127.0.0.1 --port "$P" "${DOPT[@]}" "${FAST[@]}"
[ -f "$MPID_FILE" ] && pids+=("$(cat "$MPID_FILE")")
if [ "$rc" -eq 0 ] && grep -q "listening on 127.0.0.1:$P" "$T/m1.out"; then pass "master --daemon returns 0 once listening"; else
    fail "master --daemon returns 0 once listening (rc $rc)"
    show m1
fi
mpid=$(cat "$MPID_FILE" 2>/dev/null)
if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null && [ "$mpid" != $$ ]; then
    pass "master pid file names a live process"
else
    fail "master pid file names a live process ($MPID_FILE: '$mpid')"
fi
grep -q "ember" "/proc/$mpid/cmdline" 2>/dev/null
verdict "the pid is the ember master" $?
listening "$P"
verdict "the daemon accepts connections on port $P" $?
if [ "$(readlink "/proc/$mpid/fd/0" 2>/dev/null)" = /dev/null ]; then pass "daemon stdin is /dev/null"; else fail "daemon stdin is /dev/null"; fi
wait_for "$MLOG" "master listening on 127.0.0.1:$P" 5
verdict "master log file gets the master's output" $?

P2=$(free_port)
run m2 "$EMBER" master --daemon --host 127.0.0.1 --port "$P2" "${DOPT[@]}"
if [ "$rc" -eq 1 ] && grep -q "already running as process $mpid" "$T/m2.err" && [ "$(cat "$MPID_FILE")" = "$mpid" ]; then
    pass "second master with the same pid file refused"
else
    fail "second master with the same pid file refused (rc $rc)"
    show m2
fi
listening "$P2" && fail "refused master does not listen" || pass "refused master does not listen"

# ---- worker --daemon --------------------------------------------------------------------------
run w1 "$EMBER" worker --daemon --master "ember://127.0.0.1:$P" --cores 1 --memory 256m --work-dir "$T/work1" "${DOPT[@]}" "${FAST[@]}"
[ -f "$WPID_FILE" ] && pids+=("$(cat "$WPID_FILE")")
wpid=$(cat "$WPID_FILE" 2>/dev/null)
if [ "$rc" -eq 0 ] && [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null; then pass "worker --daemon returns 0 with a live pid"; else
    fail "worker --daemon returns 0 with a live pid (rc $rc, pid '$wpid')"
    show w1
fi
wait_for "$MLOG" "registered worker worker-[0-9]+-.*-$wpid from" 15
verdict "daemon worker registers with the daemon master" $?
kill -TERM "$wpid" 2>/dev/null
wait_gone "$wpid" 15
verdict "worker daemon exits on SIGTERM" $?
[ ! -e "$WPID_FILE" ]
verdict "worker removes its pid file on SIGTERM" $?

# A stale pid file (a process that has exited) is removed and replaced.
dead=$(sh -c 'echo $$')
mkdir -p "$PD" && echo "$dead" >"$WPID_FILE"
if kill -0 "$dead" 2>/dev/null; then
    pass "stale pid file replaced (skipped: pid $dead reused)"
else
    run w2 "$EMBER" worker --daemon --master "ember://127.0.0.1:$P" --cores 1 --work-dir "$T/work2" "${DOPT[@]}" "${FAST[@]}"
    w2pid=$(cat "$WPID_FILE" 2>/dev/null)
    [ -n "$w2pid" ] && pids+=("$w2pid")
    if [ "$rc" -eq 0 ] && grep -q "removed stale pid file" "$T/w2.err" && [ -n "$w2pid" ] && [ "$w2pid" != "$dead" ] &&
        kill -0 "$w2pid" 2>/dev/null; then
        pass "stale pid file replaced"
    else
        fail "stale pid file replaced (rc $rc)"
        show w2
    fi
    kill -TERM "$w2pid" 2>/dev/null
    wait_gone "$w2pid" 15
fi

# ---- busy port ----------------------------------------------------------------------------------
run busy "$EMBER" master --daemon --host 127.0.0.1 --port "$P" --log-dir "$LD" --pid-dir "$T/pids-busy"
if [ "$rc" -ne 0 ] && grep -q "127.0.0.1:$P" "$T/busy.err" && grep -qi "in use" "$T/busy.err"; then
    pass "master --daemon on a busy port exits non-zero with the error"
else
    fail "master --daemon on a busy port exits non-zero with the error (rc $rc)"
    show busy
fi
n=$(find "$T/pids-busy" -name '*.pid' 2>/dev/null | wc -l)
[ "$n" -eq 0 ]
verdict "failed daemon leaves no pid file" $?

run badinst "$EMBER" worker --daemon --master "ember://127.0.0.1:$P" --instance 0 "${DOPT[@]}"
if [ "$rc" -eq 2 ] && grep -q -- "--instance" "$T/badinst.err"; then pass "bad --instance: exit 2"; else
    fail "bad --instance: exit 2 (rc $rc)"
    show badinst
fi

kill -TERM "$mpid" 2>/dev/null
wait_gone "$mpid" 15
verdict "master daemon exits on SIGTERM" $?
[ ! -e "$MPID_FILE" ]
verdict "master removes its pid file on SIGTERM" $?
wait_for "$MLOG" "master stopping \(SIGTERM\)" 5
verdict "master log records the stop" $?

# ---- start-all.sh / stop-all.sh ---------------------------------------------------------------
mkdir -p "$T/conf"
printf '# the workers of this test cluster\n\n  localhost   # this machine\n' >"$T/conf/workers"
P3=$(free_port)
export EMBER_BIN=$EMBER EMBER_CONF_DIR=$T/conf EMBER_MASTER_HOST=127.0.0.1 EMBER_MASTER_BIND=127.0.0.1
export EMBER_MASTER_PORT=$P3 EMBER_LOG_DIR=$T/logs-all EMBER_PID_DIR=$T/pids-all EMBER_STOP_TIMEOUT=10
export EMBER_MASTER_OPTS="${FAST[*]}" EMBER_WORKER_OPTS="--cores 1 --memory 256m ${FAST[*]}"
APD=$T/pids-all
run startall "$EMBER_SRC/scripts/start-all.sh"
am=$(cat "$APD/ember-$USER_NAME-master-$HOST.pid" 2>/dev/null)
aw=$(cat "$APD/ember-$USER_NAME-worker-1-$HOST.pid" 2>/dev/null)
pids+=($am $aw)
if [ "$rc" -eq 0 ] && [ -n "$am" ] && [ -n "$aw" ] && kill -0 "$am" && kill -0 "$aw"; then
    pass "start-all.sh starts a master and a worker"
else
    fail "start-all.sh starts a master and a worker (rc $rc, pids '$am' '$aw')"
    show startall
fi
listening "$P3"
verdict "start-all master listens on $P3" $?
wait_for "$T/logs-all/ember-$USER_NAME-master-$HOST.log" "registered worker worker-[0-9]+-.*-$aw from" 15
verdict "start-all worker registers with the master" $?
run startall2 "$EMBER_SRC/scripts/start-all.sh"
[ "$rc" -ne 0 ] && grep -q "already running" "$T/startall2.err"
verdict "start-all.sh on a running cluster fails, saying so" $?
run stopall "$EMBER_SRC/scripts/stop-all.sh"
[ "$rc" -eq 0 ]
verdict "stop-all.sh exits 0" $?
gone=0
for p in $am $aw; do wait_gone "$p" 15 || gone=1; done
verdict "stop-all.sh stops the master and the worker" $gone
n=$(find "$APD" -name '*.pid' | wc -l)
[ "$n" -eq 0 ]
verdict "stop-all.sh leaves no pid file" $?
grep -q "stopped worker (pid $aw)" "$T/stopall.out" && grep -q "stopped master (pid $am)" "$T/stopall.out"
verdict "stop-all.sh reports what it stopped" $?
finish
