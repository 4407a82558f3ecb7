#!/usr/bin/env bash
# End-to-end: the standalone cluster manager's worker registration and liveness, with real
# `ember master` / `ember worker` processes on 127.0.0.1 (free ports picked by python3).
#   - two workers register (the master logs each, named by the worker process's pid);
#   - a worker killed with -9 is declared DEAD by the master (ember.worker.timeout=2s);
#   - a worker pointed at a closed port logs retry lines with growing delays, then registers
#     once a master starts on that port;
#   - after a master restart on the same port, the workers register again;
#   - with ember.authenticate.secret on the master, a worker without it is refused (logged)
#     and one with it registers;
#   - bad arguments exit 2 with a message.
# Every wait is bounded; every process started here is killed on exit.
. "$(dirname "$0")/lib.sh"
need_file "$EMBER"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

check() { if wait_for "$2" "$3" "${4:-15}"; then pass "$1"; else fail "$1" && sed 's/^/    | /' "$2"; fi; }
# start_master LOG PORT [ARGS...]: sets $mpid.
start_master()
{
    local log=$1 port=$2
    shift 2
    "$EMBER" master --host 127.0.0.1 --port "$port" "$@" 2>"$log" &
    mpid=$!
    disown "$mpid"
    pids+=("$mpid")
}
# start_worker LOG PORT [ARGS...]: sets $wpid.
start_worker()
{
    local log=$1 port=$2
    shift 2
    "$EMBER" worker --master "ember://127.0.0.1:$port" --cores 1 --memory 256m --work-dir "$T/work" "$@" 2>"$log" &
    wpid=$!
    disown "$wpid"
    pids+=("$wpid")
}
FAST=(--conf ember.worker.timeout=2s --conf ember.worker.heartbeatInterval=300ms)

# ---- registration, death, master restart ----------------------------------------------------
P=$(free_port)
start_master "$T/m1.log" "$P" "${FAST[@]}"
m1=$mpid
check "master prints its address" "$T/m1.log" "master listening on 127.0.0.1:$P"
start_worker "$T/w1.log" "$P" "${FAST[@]}"
w1=$wpid
start_worker "$T/w2.log" "$P" "${FAST[@]}"
w2=$wpid
check "worker 1 registers" "$T/m1.log" "registered worker worker-[0-9]+-.*-$w1 from"
check "worker 2 registers" "$T/m1.log" "registered worker worker-[0-9]+-.*-$w2 from"
check "worker 1 logs its registration" "$T/w1.log" "registered with master ember://127.0.0.1:$P"

kill -9 "$w1"
check "killed worker declared DEAD" "$T/m1.log" "worker-[0-9]+-.*-$w1 \(.*\) is DEAD: no heartbeat for [0-9]+ ms" 20
sleep 1
if grep -Eq -- "-$w2 \(.*\) is DEAD" "$T/m1.log"; then
    fail "heartbeating worker 2 stays alive"
else
    pass "heartbeating worker 2 stays alive"
fi

kill -TERM "$m1"
if wait_for "$T/m1.log" "master stopping \(SIGTERM\)" 10; then pass "master stops on SIGTERM"; else fail "master stops on SIGTERM"; fi
check "worker 2 notices the master went away" "$T/w2.log" "lost connection to master ember://127.0.0.1:$P"
start_master "$T/m2.log" "$P" "${FAST[@]}"
check "worker 2 re-registers with the restarted master" "$T/m2.log" "registered worker worker-[0-9]+-.*-$w2 from" 20
kill -9 "$w2" "$mpid" 2>/dev/null

# ---- a worker started before its master: retries with backoff -------------------------------
P2=$(free_port)
start_worker "$T/w3.log" "$P2" "${FAST[@]}"
w3=$wpid
check "worker retries a closed port (attempt 4)" "$T/w3.log" "cannot connect to master ember://127.0.0.1:$P2 \(attempt 4\): .*retrying in [0-9]+ ms" 20
delays=$(grep -Eo "retrying in [0-9]+ ms" "$T/w3.log" | head -4 | grep -Eo "[0-9]+" | tr '\n' ' ')
# Backoff: 100 ms doubling, each delay jittered into [d/2, d] => attempt k waits in
# [50*2^(k-1), 100*2^(k-1)].
if $PY -c 'import sys
d=[int(x) for x in sys.argv[1:]]
ok=len(d)==4 and all(50*2**k <= d[k] <= 100*2**k for k in range(4))
sys.exit(0 if ok else 1)' $delays; then
    pass "retry delays grow (got: $delays)"
else
    fail "retry delays grow (got: $delays)"
fi
start_master "$T/m3.log" "$P2" "${FAST[@]}"
check "late master gets the waiting worker" "$T/m3.log" "registered worker worker-[0-9]+-.*-$w3 from" 20
kill -9 "$w3" "$mpid" 2>/dev/null

# ---- authentication ---------------------------------------------------------------------------
P3=$(free_port)
start_master "$T/m4.log" "$P3" "${FAST[@]}" --conf ember.authenticate.secret=S3cret
check "secured master starts" "$T/m4.log" "master listening on 127.0.0.1:$P3"
start_worker "$T/w4.log" "$P3" "${FAST[@]}"
w4=$wpid
check "worker without the secret is refused by the master" "$T/m4.log" "authentication refused"
check "refused worker logs its failed attempts" "$T/w4.log" "cannot connect to master ember://127.0.0.1:$P3"
start_worker "$T/w5.log" "$P3" "${FAST[@]}" --conf ember.authenticate.secret=S3cret
w5=$wpid
check "worker with the secret registers" "$T/m4.log" "registered worker worker-[0-9]+-.*-$w5 from"
if grep -Eq -- "registered worker worker-[0-9]+-.*-$w4 " "$T/m4.log"; then
    fail "worker without the secret never registers"
else
    pass "worker without the secret never registers"
fi
start_worker "$T/w6.log" "$P3" "${FAST[@]}" --conf ember.authenticate.secret=wrong
w6=$wpid
check "worker with a wrong secret is refused" "$T/w6.log" "cannot connect to master ember://127.0.0.1:$P3"
if grep -Eq -- "registered worker worker-[0-9]+-.*-$w6 " "$T/m4.log"; then
    fail "worker with a wrong secret never registers"
else
    pass "worker with a wrong secret never registers"
fi
kill -9 "$w4" "$w5" "$w6" "$mpid" 2>/dev/null

# ---- bad arguments ----------------------------------------------------------------------------
run badurl "$EMBER" worker --master spark://h:1
if [ "$rc" -eq 2 ] && grep -q "spark://h:1" "$T/badurl.err"; then pass "bad master URL: exit 2 naming it"; else
    fail "bad master URL: exit 2 naming it (rc $rc)"
    show badurl
fi
run badport "$EMBER" worker --master ember://h:99999
if [ "$rc" -eq 2 ] && grep -q "ember://h:99999" "$T/badport.err"; then pass "bad master port: exit 2 naming the URL"; else
    fail "bad master port: exit 2 naming the URL (rc $rc)"
    show badport
fi
run nomaster "$EMBER" worker --cores 2
if [ "$rc" -eq 2 ] && grep -q -- "--master" "$T/nomaster.err"; then pass "worker without --master: exit 2"; else
    fail "worker without --master: exit 2 (rc $rc)"
    show nomaster
fi
run badcores "$EMBER" worker --master ember://127.0.0.1:1 --cores zero
if [ "$rc" -eq 2 ] && grep -q "zero" "$T/badcores.err"; then pass "bad --cores: exit 2"; else
    fail "bad --cores: exit 2 (rc $rc)"
    show badcores
fi
run mport "$EMBER" master --port seventy
if [ "$rc" -eq 2 ] && grep -q "seventy" "$T/mport.err"; then pass "master bad --port: exit 2"; else
    fail "master bad --port: exit 2 (rc $rc)"
    show mport
fi
run mextra "$EMBER" master --bogus
if [ "$rc" -eq 2 ] && grep -q -- "--bogus" "$T/mextra.err"; then pass "master unknown argument: exit 2"; else
    fail "master unknown argument: exit 2 (rc $rc)"
    show mextra
fi
finish
