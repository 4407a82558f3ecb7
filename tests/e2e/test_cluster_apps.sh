#!/usr/bin/env bash
# End-to-end: applications on the standalone cluster, with real `ember master` / `ember worker`
# processes on 127.0.0.1 and a real application binary (tests/e2e/fake_app.c, built here
# against libember.a) whose executors record their environment and sleep until killed:
#   - spread out: two 1-core workers get one executor each; the binary is fetched once per
#     worker and checked by hash; the executor environment follows the contract (EMBER_*,
#     the application's entries overriding the worker's, nothing else of the worker's);
#   - kill -9 of an executor: the driver hears FAILED with exit code -9 and the signal, a
#     replacement starts on the same worker from its binary cache;
#   - a worker joining mid-application gets an executor (cores still wanted);
#   - the application's end (SIGTERM to the driver) kills its executors;
#   - consolidated (ember.deploy.spreadOut=false): both executors on one worker; with a
#     secret: EMBER_AUTH_SECRET reaches the executors, a driver without it is refused;
#   - a hash nobody serves and a file that is not executable: clear errors, and the retry cap
#     ends the application (the driver is told).
# Every wait is bounded; every process started here is killed on exit.
. "$(dirname "$0")/lib.sh"
need_file "$EMBER"

pids=()
cleanup()
{
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    # executors of killed workers (their parent is gone): found by their marker files
    for f in "$T"/out*/exec-*.env; do
        [ -f "$f" ] && kill -9 "$(sed -n 's/^pid=//p' "$f")" 2>/dev/null
    done
}
trap cleanup EXIT

APP=$T/fake_app
if cc ${EMBER_CFLAGS:-} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$EMBER_SRC/include" \
    -I"$EMBER_SRC/src" "$EMBER_SRC/tests/e2e/fake_app.c" "$EMBER_BUILD/libember.a" \
    $(pkg-config --libs liblz4 libzstd libxxhash libsodium libuv) -lpthread -lm -o "$APP" \
    2>"$T/cc.err"; then
    pass "fake application compiles"
else
    fail "fake application compiles"
    show cc
    finish
fi

check() { if wait_for "$2" "$3" "${4:-20}"; then pass "$1"; else fail "$1" && sed 's/^/    | /' "$2" | tail -20; fi; }
# count FILE REGEX: matching lines
count() { grep -Ec -- "$2" "$1" 2>/dev/null; }
# wait_count FILE REGEX N [SECONDS]: until at least N lines match
wait_count()
{
    local deadline=$((SECONDS + ${4:-20}))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(count "$1" "$2")" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
# env_of FILE NAME: the value of NAME in a marker file (empty when absent)
env_of() { sed -n "s/^$2=//p" "$1" | head -1; }
start_master()
{
    local log=$1 port=$2
    shift 2
    "$EMBER" master --host 127.0.0.1 --port "$port" "$@" 2>"$log" &
    mpid=$!
    disown "$mpid"
    pids+=("$mpid")
}
# start_worker LOG PORT WORKDIR CORES [ARGS...]: sets $wpid. FOO_LEAK must not reach executors.
start_worker()
{
    local log=$1 port=$2 dir=$3 cores=$4
    shift 4
    FOO_LEAK=1 "$EMBER" worker --master "ember://127.0.0.1:$port" --cores "$cores" --memory 1g \
        --host 127.0.0.1 --work-dir "$dir" "$@" 2>"$log" &
    wpid=$!
    disown "$wpid"
    pids+=("$wpid")
}
# start_app OUT ERR OUTDIR PORT [ARGS...]: sets $apid.
start_app()
{
    local out=$1 err=$2 dir=$3 port=$4
    shift 4
    mkdir -p "$dir"
    "$APP" "ember://127.0.0.1:$port" "$dir" "$@" >"$out" 2>"$err" &
    apid=$!
    pids+=("$apid")
}
FAST=(--conf ember.worker.timeout=4s --conf ember.worker.heartbeatInterval=300ms)

# ---- spread out, environment, binary cache ------------------------------------------------------
P=$(free_port)
start_master "$T/m.log" "$P" "${FAST[@]}"
check "master starts" "$T/m.log" "master listening on 127.0.0.1:$P"
start_worker "$T/w1.log" "$P" "$T/w1" 1 "${FAST[@]}"
w1=$wpid
start_worker "$T/w2.log" "$P" "$T/w2" 1 "${FAST[@]}"
w2=$wpid
check "worker 1 registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w1 from"
check "worker 2 registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w2 from"

O=$T/out1
start_app "$T/a1.out" "$T/a1.err" "$O" "$P" --executor-cores 1 --memory 256 --env EXTRA=x=y
a1=$apid
check "application registers" "$T/a1.out" "^registered app-[0-9]{14}-[0-9]{4}$"
app=$(sed -n 's/^registered //p' "$T/a1.out")
hash=$(sed -n 's/^serving \([0-9a-f]*\) at .*/\1/p' "$T/a1.out")
durl=$(sed -n 's/^serving [0-9a-f]* at //p' "$T/a1.out")
want_hash=$(sha256sum "$APP" | cut -d' ' -f1)
if [ "$hash" = "$want_hash" ]; then pass "the driver serves its binary under its SHA-256"; else fail "binary hash $hash != $want_hash"; fi
if wait_count "$T/a1.out" "^added [01] worker-" 2; then pass "two executors added"; else fail "two executors added" && cat "$T/a1.out"; fi
ws=$(grep -E "^added [01] " "$T/a1.out" | awk '{print $3}' | sort -u | wc -l)
if [ "$ws" -eq 2 ]; then pass "spread out: one executor on each worker"; else fail "spread out: executors on $ws workers" && cat "$T/a1.out"; fi
for id in 0 1; do
    if wait_for "$O/exec-$app-$id.env" "^pid=" 20; then pass "executor $id runs the application binary"; else fail "executor $id runs" && tail "$T/w1.log" "$T/w2.log"; fi
done
ok=1
for id in 0 1; do
    f=$O/exec-$app-$id.env
    [ -f "$f" ] || { ok=0; continue; }
    cwd=$(env_of "$f" cwd)
    wid=$(grep -E "^added $id " "$T/a1.out" | awk '{print $3}')
    wdir=$T/w1
    grep -q "$wid" "$T/w2.log" && wdir=$T/w2
    for kv in "EMBER_EXECUTOR_MODE=fake" "EMBER_DRIVER_URL=$durl" "EMBER_APP_ID=$app" \
        "EMBER_EXECUTOR_ID=$id" "EMBER_EXECUTOR_CORES=1" "EMBER_EXECUTOR_MEMORY_MB=256" \
        "EMBER_WORKER_ID=$wid" "EMBER_EXECUTOR_HOST=127.0.0.1" "EMBER_EXECUTOR_DIR=$cwd" \
        "EXTRA=x=y" "FAKE_OUT=$O" "cwd=$wdir/$app/$id"; do
        if ! grep -qxF -- "$kv" "$f"; then
            echo "    | executor $id: missing $kv"
            ok=0
        fi
    done
    for absent in FOO_LEAK EMBER_AUTH_SECRET EMBER_DAEMON_ROLE; do
        if grep -q "^$absent=" "$f"; then
            echo "    | executor $id: unexpected $absent"
            ok=0
        fi
    done
    grep -q "^PATH=" "$f" || { echo "    | executor $id: no PATH" && ok=0; }
done
if [ $ok -eq 1 ]; then pass "executor environment follows the contract"; else fail "executor environment follows the contract"; fi
for w in 1 2; do
    if [ "$(count "$T/w$w.log" "fetched binary $hash \([0-9]+ bytes\) from $durl")" -eq 1 ] &&
        cmp -s "$APP" "$T/w$w/binaries/$hash"; then
        pass "worker $w fetched the binary once, byte-exact"
    else
        fail "worker $w fetched the binary once, byte-exact"
        grep binary "$T/w$w.log" | sed 's/^/    | /'
    fi
done

# ---- kill -9 of an executor: reported with the signal, replaced from the cache ------------------
victim=$(env_of "$O/exec-$app-0.env" pid)
vw=$(grep -E "^added 0 " "$T/a1.out" | awk '{print $3}')
kill -9 "$victim"
check "driver hears executor 0 FAILED with -9" "$T/a1.out" "^removed 0 FAILED -9 killed by signal 9"
check "a replacement executor 2 is added on the same worker" "$T/a1.out" "^added 2 $vw 127.0.0.1 1 256$"
if wait_for "$O/exec-$app-2.env" "^pid=" 20; then pass "replacement executor runs"; else fail "replacement executor runs"; fi
vlog=$T/w1.log
grep -q "$vw" "$T/w2.log" && vlog=$T/w2.log
if [ "$(count "$vlog" "fetched binary")" -eq 1 ] && [ "$(count "$vlog" "binary $hash found in the cache")" -ge 1 ]; then
    pass "the replacement came from the worker's binary cache"
else
    fail "the replacement came from the worker's binary cache"
    grep binary "$vlog" | sed 's/^/    | /'
fi
check "master logs the failure" "$T/m.log" "executor 0 of $app on worker $vw FAILED \(exit code -9\)"

# ---- a worker joining mid-application ------------------------------------------------------------
start_worker "$T/w3.log" "$P" "$T/w3" 1 "${FAST[@]}"
w3=$wpid
check "late worker registers" "$T/m.log" "registered worker worker-[0-9]+-.*-$w3 from"
check "late worker gets executor 3" "$T/a1.out" "^added 3 worker-[0-9]+-.*-$w3 "
if wait_for "$O/exec-$app-3.env" "^pid=" 20; then pass "its executor runs"; else fail "late worker's executor runs"; fi

# ---- the application ends: executors die ----------------------------------------------------------
live=()
for id in 1 2 3; do live+=("$(env_of "$O/exec-$app-$id.env" pid)"); done
kill -TERM "$a1"
check "driver stops cleanly" "$T/a1.out" "^stopped$"
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ] && kill -0 "${live[@]}" 2>/dev/null; do sleep 0.1; done
alive=0
for p in "${live[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
if [ $alive -eq 0 ]; then pass "application end kills its executors"; else fail "application end kills its executors ($alive alive)"; fi
check "master ends the application" "$T/m.log" "application $app \(fake-app\) FINISHED"
check "workers are told" "$T/w3.log" "application $app finished"
if [ -f "$T/w3/$app/3/stderr" ] && [ ! -e "$T/w3/$app/3/nothing" ]; then pass "executor logs are kept"; else fail "executor logs are kept"; fi
kill -9 "$w1" "$w2" "$w3" "$mpid" 2>/dev/null

# ---- consolidated, with a secret --------------------------------------------------------------------
P2=$(free_port)
SEC=(--conf ember.authenticate.secret=S3cret)
start_master "$T/m2.log" "$P2" "${FAST[@]}" "${SEC[@]}" --conf ember.deploy.spreadOut=false
check "second master starts" "$T/m2.log" "master listening on 127.0.0.1:$P2"
start_worker "$T/w4.log" "$P2" "$T/w4" 2 "${FAST[@]}" "${SEC[@]}"
w4=$wpid
check "worker 4 registers" "$T/m2.log" "registered worker worker-[0-9]+-.*-$w4 from"
start_worker "$T/w5.log" "$P2" "$T/w5" 2 "${FAST[@]}" "${SEC[@]}"
w5=$wpid
check "worker 5 registers" "$T/m2.log" "registered worker worker-[0-9]+-.*-$w5 from"
O2=$T/out2
start_app "$T/a2.out" "$T/a2.err" "$O2" "$P2" --cores-max 2 --executor-cores 1 --secret S3cret
a2=$apid
if wait_count "$T/a2.out" "^added [01] " 2; then pass "two executors added (consolidated)"; else fail "two executors added (consolidated)" && cat "$T/a2.out" "$T/a2.err"; fi
ws=$(grep -E "^added [01] " "$T/a2.out" | awk '{print $3}' | sort -u | wc -l)
if [ "$ws" -eq 1 ]; then pass "consolidated: both executors on one worker"; else fail "consolidated: executors on $ws workers"; fi
app2=$(sed -n 's/^registered //p' "$T/a2.out")
if wait_for "$O2/exec-$app2-1.env" "^pid=" 20 && grep -qx "EMBER_AUTH_SECRET=S3cret" "$O2/exec-$app2-1.env"; then
    pass "executors get EMBER_AUTH_SECRET"
else
    fail "executors get EMBER_AUTH_SECRET"
fi
run nosecret "$APP" "ember://127.0.0.1:$P2" "$T/out3"
if [ "$rc" -eq 1 ] && grep -q "ember://127.0.0.1:$P2" "$T/nosecret.err"; then pass "a driver without the secret is refused, naming the master"; else
    fail "a driver without the secret is refused (rc $rc)"
    show nosecret
fi
kill -TERM "$a2"
check "second driver stops" "$T/a2.out" "^stopped$"

# ---- a hash nobody serves; a file that is not executable ----------------------------------------------
nohash=$(printf 'e%.0s' $(seq 64))
# one core at a time, so every failure is one attempt: exactly the cap of 10
start_app "$T/a4.out" "$T/a4.err" "$T/out4" "$P2" --hash "$nohash" --secret S3cret --cores-max 1
check "missing hash: executor FAILED naming the hash" "$T/a4.out" "^removed [0-9]+ FAILED 0 cannot get the application binary: .*$nohash.*no file with hash"
check "missing hash: retry cap ends the application" "$T/a4.out" "^disconnected master ember://127.0.0.1:$P2 removed application .*failed 10 times" 60
n=$(count "$T/a4.out" "^added ")
if [ "$n" -eq 10 ]; then pass "exactly 10 attempts"; else fail "exactly 10 attempts (got $n)"; fi
wait "$apid" 2>/dev/null
if [ $? -eq 3 ]; then pass "driver exits after removal"; else fail "driver exits after removal"; fi
printf 'this is text, not a program\n' >"$T/data.txt"
start_app "$T/a5.out" "$T/a5.err" "$T/out5" "$P2" --serve "$T/data.txt" --secret S3cret
check "non-executable binary: clear error" "$T/a5.out" "^removed [0-9]+ FAILED 0 cannot start the application binary .*: Exec format error"
check "non-executable binary: application removed" "$T/a5.out" "^disconnected .*failed 10 times" 60
if grep -q "^added " "$T/a5.out" && [ "$(count "$T/m2.log" "application app-.* FAILED")" -ge 2 ]; then pass "master logs both failed applications"; else fail "master logs both failed applications"; fi
finish
