#!/usr/bin/env bash
# End-to-end: hostile peers against a standalone cluster with ember.authenticate.secret set
# everywhere — real `ember master` / `ember worker` processes on 127.0.0.1, real applications
# (examples/wordcount, and tests/e2e/security_app.c, a driver that pauses between two jobs).
#   - with the secret everywhere, word count on the cluster matches tests/e2e/reference.py;
#   - a driver without the secret / with a wrong one cannot register its application (clear
#     error naming the master, non-zero exit, no output directory; the master logs why);
#   - a worker without / with a wrong secret is refused (the master logs the peer and why, the
#     worker says so and never registers);
#   - an executor without / with a wrong secret (a process started by hand in executor mode with
#     the environment of docs/architecture.md section 10) is refused by the driver, which logs
#     it, and the running application is unaffected; so is a peer without the secret that
#     announces itself as a worker (the driver's endpoint serves the binary to workers);
#   - a fetcher without / with a wrong secret is refused by an executor's block server (the
#     handshake is spoken by tests/e2e/hostile_peer.py, written from the protocol's description;
#     the same script with the right secret is accepted, so the refusals are the secret's doing;
#     libember's own fetcher is covered by tests/unit/test_block_transfer.c);
#   - garbage bytes, a frame one byte over ember.rpc.message.maxSize, a frame of protocol
#     version 2, a hello announcing version 2, a hello whose field overruns the frame, a
#     half-sent frame followed by the end of the stream, and (after a valid handshake) a frame
#     of an unknown type, sent to each listening port — the master, the driver's endpoint and
#     an executor's block server — close only that connection, logged with the peer's address
#     and the reason; the daemons and the application go on and the next jobs are right.
# Workers do not listen on any port (they connect out), and the submit client's file server
# is not part of this test. A worker pointed at a closed port (retry with backoff) is covered
# by tests/e2e/test_cluster_register.sh. Every wait is bounded; every process started here is
# killed on exit.
. "$(dirname "$0")/lib.sh"
need_file "$EMBER"
need_file "$EX/wordcount"
REF="$PY $EMBER_SRC/tests/e2e/reference.py"
HOSTILE="$PY $EMBER_SRC/tests/e2e/hostile_peer.py"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

APP=$T/security_app
if cc ${EMBER_CFLAGS:-} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$EMBER_SRC/include" \
    "$EMBER_SRC/tests/e2e/security_app.c" "$EMBER_BUILD/libember.a" \
    $(pkg-config --libs liblz4 libzstd libxxhash libsodium libuv) -lpthread -lm -o "$APP" \
    2>"$T/cc.err"; then
    pass "security_app compiles"
else
    fail "security_app compiles"
    show cc
    finish
fi

check() { if wait_for "$2" "$3" "${4:-20}"; then pass "$1"; else fail "$1" && sed 's/^/    | /' "$2" | tail -20; fi; }
# absent NAME FILE REGEX: passes when no line of FILE matches.
absent()
{
    if grep -Eq -- "$3" "$2" 2>/dev/null; then
        fail "$1"
        grep -E -- "$3" "$2" | head -5 | sed 's/^/    | /'
    else
        pass "$1"
    fi
}
alive() { if kill -0 "$2" 2>/dev/null; then pass "$1"; else fail "$1"; fi; }
start_master()
{
    local log=$1 port=$2
    shift 2
    "$EMBER" master --host 127.0.0.1 --port "$port" "$@" 2>"$log" &
    mpid=$!
    disown "$mpid"
    pids+=("$mpid")
}
# start_worker LOG PORT WORKDIR [ARGS...]: sets $wpid.
start_worker()
{
    local log=$1 port=$2 dir=$3
    shift 3
    "$EMBER" worker --master "ember://127.0.0.1:$port" --cores 1 --memory 1g --host 127.0.0.1 \
        --work-dir "$dir" "$@" 2>"$log" &
    wpid=$!
    disown "$wpid"
    pids+=("$wpid")
}

SECRET=rLk3-s3cret-4-tests
SEC=(--conf "ember.authenticate.secret=$SECRET")
FAST=(--conf ember.worker.timeout=10s --conf ember.worker.heartbeatInterval=300ms)
$REF mkinputs-wordcount "$T/in" || {
    fail "making inputs"
    finish
}
IN=$T/in/big.txt
SPLIT=(--conf ember.files.maxPartitionBytes=64k)

# ---- the cluster, secret everywhere -----------------------------------------------------------
P=$(free_port)
MURL=ember://127.0.0.1:$P
start_master "$T/m.log" "$P" "${FAST[@]}" "${SEC[@]}"
master=$mpid
check "secured master starts" "$T/m.log" "master listening on 127.0.0.1:$P"
start_worker "$T/w1.log" "$P" "$T/w1" "${FAST[@]}" "${SEC[@]}"
w1=$wpid
start_worker "$T/w2.log" "$P" "$T/w2" "${FAST[@]}" "${SEC[@]}"
w2=$wpid
check "worker 1 with the secret registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w1 from"
check "worker 2 with the secret registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w2 from"

expect_ok wc1 "$EX/wordcount" --master "$MURL" "${SEC[@]}" "${SPLIT[@]}" "$IN" "$T/wc1" &&
    if $REF wordcount "$T/wc1" "$IN" >"$T/wc1.diff" 2>&1; then
        pass "wordcount with the secret everywhere matches the reference"
    else
        fail "wordcount with the secret everywhere differs from the reference"
        head "$T/wc1.diff"
    fi

# ---- drivers without / with a wrong secret ----------------------------------------------------
for how in none wrong; do
    args=()
    want="peer sent no authentication"
    if [ $how = wrong ]; then
        args=(--conf ember.authenticate.secret=not-the-secret)
        want="wrong proof of the secret"
    fi
    run "drv-$how" "$EX/wordcount" --master "$MURL" "${args[@]}" "${SPLIT[@]}" "$IN" "$T/wc-$how"
    if [ "$rc" -ne 0 ] && grep -q "cannot connect to master $MURL: authentication refused" "$T/drv-$how.err"; then
        pass "driver with $how secret: non-zero exit, error names the master and the refusal"
    else
        fail "driver with $how secret: non-zero exit, error names the master and the refusal (rc $rc)"
        show "drv-$how"
    fi
    if [ ! -e "$T/wc-$how" ]; then pass "driver with $how secret: no output directory"; else fail "driver with $how secret: no output directory"; fi
    check "master logs the refused driver ($how secret)" "$T/m.log" "closing connection from 127\.0\.0\.1:[0-9]+: authentication refused: $want"
done
n=$(grep -c "registered application" "$T/m.log")
if [ "$n" -eq 1 ]; then pass "refused drivers register no application"; else fail "refused drivers register no application ($n registered)"; fi

# ---- workers without / with a wrong secret ----------------------------------------------------
start_worker "$T/w-none.log" "$P" "$T/w-none" "${FAST[@]}"
wn=$wpid
start_worker "$T/w-wrong.log" "$P" "$T/w-wrong" "${FAST[@]}" --conf ember.authenticate.secret=nope
ww=$wpid
# (the worker's retry line says "permission denied"; the line before it gives the reason)
check "worker without the secret says it is refused" "$T/w-none.log" "closing connection to 127\.0\.0\.1:$P: authentication refused: peer requires authentication and no secret is configured here"
check "worker with a wrong secret says it is refused" "$T/w-wrong.log" "closing connection to 127\.0\.0\.1:$P: refused by the peer: wrong proof of the secret"
check "refused worker retries" "$T/w-wrong.log" "cannot connect to master $MURL \(attempt 2\)"
check "master logs the wrong-secret worker's refusal" "$T/m.log" "closing connection from 127\.0\.0\.1:[0-9]+: authentication refused: wrong proof of the secret"
kill -9 "$wn" "$ww" 2>/dev/null
absent "worker without the secret never registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$wn "
absent "worker with a wrong secret never registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$ww "
absent "worker without the secret never believes it registered" "$T/w-none.log" "registered with master"
absent "worker with a wrong secret never believes it registered" "$T/w-wrong.log" "registered with master"

# ---- a running application: its driver pauses between two jobs -------------------------------
GO=$T/go
EMBER_LOG_LEVEL=info "$APP" --master "$MURL" "${SEC[@]}" "${SPLIT[@]}" \
    --conf ember.driver.host=127.0.0.1 "$IN" "$T/job1" "$GO" "$T/job2" >"$T/app.out" 2>"$T/app.log" &
app_pid=$!
pids+=("$app_pid")
check "application's first job done" "$T/app.out" "^job 1 done$" 60
if $REF wordcount "$T/job1" "$IN" >"$T/job1.diff" 2>&1; then pass "first job matches the reference"; else fail "first job differs from the reference"; fi
app=$(sed -En 's/.*application (app-[0-9-]+) registered with .*/\1/p' "$T/app.log" | head -1)
DP=$(sed -En 's/.*; driver at 127\.0\.0\.1:([0-9]+)$/\1/p' "$T/app.log" | head -1)
BP=$(sed -En 's/.*executor 0 registered from .* blocks on 127\.0\.0\.1:([0-9]+)\)$/\1/p' "$T/app.log" | head -1)
if [ -n "$app" ] && [ -n "$DP" ] && [ -n "$BP" ]; then
    pass "driver logs its application, its port ($DP) and executor 0's block server ($BP)"
else
    fail "driver logs its application, its port and executor 0's block server"
    sed 's/^/    | /' "$T/app.log" | head -20
    finish
fi
XLOG=$(ls "$T"/w[12]/"$app"/0/stderr 2>/dev/null | head -1)
if [ -n "$XLOG" ]; then pass "executor 0's log found"; else fail "executor 0's log found" && finish; fi
# Whoever serves executor 0's blocks on port BP logs the refusals: its worker's shuffle service
# (on by default), or the executor's own block server when the service is off.
BLOG="$XLOG"
grep -qs "block server listening on 127\.0\.0\.1:$BP" "$XLOG" || BLOG="${XLOG%%/$app/*}.log"

# ---- executors without / with a wrong secret, started by hand ---------------------------------
for how in none wrong; do
    xenv=(PATH="$PATH" EMBER_EXECUTOR_MODE=1 EMBER_DRIVER_URL="127.0.0.1:$DP" EMBER_APP_ID="$app"
        EMBER_EXECUTOR_ID=99 EMBER_EXECUTOR_CORES=1 EMBER_EXECUTOR_MEMORY_MB=64
        EMBER_WORKER_ID=intruder EMBER_EXECUTOR_HOST=127.0.0.1 EMBER_EXECUTOR_DIR="$T/x-$how")
    want="peer sent no authentication"
    if [ $how = wrong ]; then
        xenv+=(EMBER_AUTH_SECRET=not-the-secret)
        want="wrong proof of the secret"
    fi
    mkdir -p "$T/x-$how"
    run "x-$how" timeout 60 env -i "${xenv[@]}" "$APP"
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then pass "executor with $how secret exits non-zero ($rc)"; else
        fail "executor with $how secret exits non-zero (rc $rc)"
        show "x-$how"
    fi
    check "driver logs the refused executor ($how secret)" "$T/app.log" "closing connection from 127\.0\.0\.1:[0-9]+: authentication refused: $want"
done
absent "no intruding executor registers" "$T/app.log" "executor 99 registered"
# The driver's endpoint also serves the application binary to workers (GET_FILE): a peer
# announcing itself as a worker gets no further without the secret.
run getfile-none $HOSTILE "$DP" auth --role 2
if grep -qx "refused: peer sent no authentication" "$T/getfile-none.out"; then pass "a worker-role peer without the secret is refused by the driver"; else fail "a worker-role peer without the secret is refused by the driver" && cat "$T/getfile-none.out"; fi
run getfile-right $HOSTILE "$DP" auth --role 2 --secret "$SECRET"
if grep -qx "accepted" "$T/getfile-right.out"; then pass "the same peer with the secret is accepted by the driver (control)"; else fail "the same peer with the secret is accepted by the driver (control)" && cat "$T/getfile-right.out" "$T/getfile-right.err"; fi

# ---- fetchers without / with a wrong secret ---------------------------------------------------
# role 6: a block fetcher
run fetch-none $HOSTILE "$BP" auth --role 6
if grep -qx "refused: peer sent no authentication" "$T/fetch-none.out"; then pass "fetcher without the secret is refused"; else fail "fetcher without the secret is refused" && cat "$T/fetch-none.out"; fi
run fetch-wrong $HOSTILE "$BP" auth --role 6 --secret not-the-secret
if grep -qx "refused: wrong proof of the secret" "$T/fetch-wrong.out"; then pass "fetcher with a wrong secret is refused"; else fail "fetcher with a wrong secret is refused" && cat "$T/fetch-wrong.out"; fi
run fetch-right $HOSTILE "$BP" auth --role 6 --secret "$SECRET"
if grep -qx "accepted" "$T/fetch-right.out"; then pass "the same handshake with the secret is accepted (control)"; else fail "the same handshake with the secret is accepted (control)" && cat "$T/fetch-right.out" "$T/fetch-right.err"; fi
for how in none wrong; do
    lp=$(sed -n 's/^local //p' "$T/fetch-$how.out")
    check "the block server logs the refused fetcher $lp ($how secret)" "$BLOG" "refused connection from $lp: .*refused"
done

# ---- bad input at every listening port ----------------------------------------------------------
# attack NAME PORT LOG REGEX MODE [ARGS...]: sends MODE to PORT; the connection must be closed by
# the peer and LOG must get a line naming this connection's address and matching REGEX.
attack()
{
    local name=$1 port=$2 log=$3 re=$4 mode=$5
    shift 5
    run "$name" $HOSTILE "$port" "$mode" "$@"
    local lp
    lp=$(sed -n 's/^local //p' "$T/$name.out")
    if [ -n "$lp" ] && grep -qx closed "$T/$name.out"; then
        pass "$name: the peer closes the connection"
    else
        fail "$name: the peer closes the connection"
        cat "$T/$name.out" "$T/$name.err" | sed 's/^/    | /'
    fi
    check "$name: logged with the peer's address and the reason" "$log" "connection from ${lp:-none}: .*$re" 10
}
TOOBIG="exceeds the limit of 134217728 bytes \(ember\.rpc\.message\.maxSize\)"
BLK_TOOBIG="length 134217725 is outside \[4, 134217724\] \(ember\.rpc\.message\.maxSize\)"
# endpoints (master: role worker; driver: role executor)
for target in master driver; do
    if [ $target = master ]; then port=$P log=$T/m.log role=2; else port=$DP log=$T/app.log role=4; fi
    attack "$target-garbage" "$port" "$log" "malformed frame: .*frame (length|protocol version)" garbage
    attack "$target-oversize" "$port" "$log" "malformed frame: .*frame length 134217725 $TOOBIG" oversize
    attack "$target-version" "$port" "$log" "malformed frame: .*frame protocol version 2, this process speaks version 1" version
    attack "$target-hello-version" "$port" "$log" "protocol version mismatch: peer speaks 2, we speak 1" hello-version --role $role
    attack "$target-badbody" "$port" "$log" "malformed frame: frame type 1 \(hello\) field 'app_id': length 1000 exceeds" badbody --role $role
    attack "$target-half" "$port" "$log" "peer closed the connection during the handshake" half --role $role
    attack "$target-unknown" "$port" "$log" "malformed frame: frame type 999: unknown message type" auth-unknown --role $role --secret "$SECRET"
done
# an executor's block server (role fetcher)
attack blocks-garbage "$BP" "$BLOG" "frame from .*: (length|protocol version)" garbage
attack blocks-oversize "$BP" "$BLOG" "$BLK_TOOBIG" oversize
attack blocks-version "$BP" "$BLOG" "protocol version 2, this process speaks version 1" version
attack blocks-hello-version "$BP" "$BLOG" "protocol version mismatch with .*: it speaks 2, we speak 1" hello-version --role 6
attack blocks-badbody "$BP" "$BLOG" "frame type 1 \(hello\) field 'app_id': length 1000 exceeds" badbody --role 6
attack blocks-half "$BP" "$BLOG" "closed the connection" half --role 6
attack blocks-unknown "$BP" "$BLOG" "unknown message type" auth-unknown --role 6 --secret "$SECRET"

# ---- everything goes on -------------------------------------------------------------------------
alive "master survives" "$master"
alive "worker 1 survives" "$w1"
alive "worker 2 survives" "$w2"
alive "driver survives" "$app_pid"
absent "the application loses no executor" "$T/app.log" "lost executor|lost the master"
absent "the master loses no worker" "$T/m.log" "is DEAD"
touch "$GO"
check "application's second job done" "$T/app.out" "^job 2 done$" 60
wait "$app_pid"
arc=$?
if [ $arc -eq 0 ]; then pass "application exits 0"; else fail "application exits 0 (got $arc)" && tail "$T/app.log"; fi
if $REF wordcount "$T/job2" "$IN" >"$T/job2.diff" 2>&1; then pass "second job (same executors) matches the reference"; else fail "second job differs from the reference" && head "$T/job2.diff"; fi
expect_ok wc2 "$EX/wordcount" --master "$MURL" "${SEC[@]}" "${SPLIT[@]}" "$IN" "$T/wc2" &&
    if $REF wordcount "$T/wc2" "$IN" >"$T/wc2.diff" 2>&1; then
        pass "a new application after the attacks matches the reference"
    else
        fail "a new application after the attacks differs from the reference"
    fi
finish
