#!/usr/bin/env bash
# Ember's benchmark suite (`make bench`): runs Ember's examples and their baselines on the same
# inputs in the same run, verifies every output against the hand-written C ceiling, and prints
# one table of times, throughput, peak memory and ratios (also written to BUILD/bench/results.md).
#
#   bench/run.sh BUILD            (BUILD = the CMake build dir, as `make bench` passes it)
#
# Environment (all optional):
#   BENCH_SCALE=1         input sizes relative to the default (1 GB text, 256 MB high-cardinality
#                         text, 10 M terasort records); 0.05 makes a quick smoke run
#   BENCH_DIR=BUILD/benchdata   where inputs, outputs and logs go; inputs are reused when
#                         generated with the same parameters (BENCH_REGEN=1 forces regeneration)
#   BENCH_MASTER=local[2] the master URL given to Ember's examples
#   BENCH_EMBER_ARGS=     extra arguments for Ember's examples (e.g. "--conf k=v")
#   BENCH_EMBER=BUILD/bin/ember   the ember command used for `ember gen`
#   BENCH_TIMEOUT=1800    seconds before any one run is killed (BENCH_DASK_TIMEOUT=900 for Dask)
#   BENCH_SKIP=           space-separated systems to leave out: ember dask coreutils
# Exit status: 0 when every system that ran produced the ceiling's answer; 1 on any mismatch or
# failed run; 2 when the suite cannot run (a tool or input generator is missing).
set -uo pipefail

die() {
    echo "bench: $*" >&2
    exit 2
}

[ $# -ge 1 ] || die "usage: bench/run.sh BUILD_DIR"
[ -d "$1" ] || die "build directory '$1' does not exist (run make first)"
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${BENCH_SCALE:-1}
BENCH_DIR=${BENCH_DIR:-$BUILD/benchdata}
MASTER=${BENCH_MASTER:-local[2]}
EMBER_ARGS=${BENCH_EMBER_ARGS:-}
EMBER_CMD=${BENCH_EMBER:-$BUILD/bin/ember}
TIMEOUT=${BENCH_TIMEOUT:-1800}
DASK_TIMEOUT=${BENCH_DASK_TIMEOUT:-900}
SKIP=" ${BENCH_SKIP:-} "
PY=/usr/bin/python3
CEIL_WC=$BUILD/bench/wc_ceiling
CEIL_SORT=$BUILD/bench/sort_ceiling

awk -v s="$SCALE" 'BEGIN { exit !(s + 0 > 0) }' || die "BENCH_SCALE='$SCALE' is not a positive number"

# ---- tools --------------------------------------------------------------------------------
EMBER_BENCH_DEPS=1 "$SRC/scripts/install-deps.sh" || die "scripts/install-deps.sh failed"
for t in /usr/bin/time timeout basenc tr sort uniq awk cmp; do
    command -v "$t" >/dev/null || die "required tool '$t' is missing"
done
[ -x "$CEIL_WC" ] || die "$CEIL_WC is not built (run make; CMake builds bench/*.c)"
[ -x "$CEIL_SORT" ] || die "$CEIL_SORT is not built (run make; CMake builds bench/*.c)"
HAVE_DASK=1
"$PY" -c 'import dask.distributed, numpy' 2>/dev/null || HAVE_DASK=0

mkdir -p "$BENCH_DIR/logs" "$BENCH_DIR/out" "$BENCH_DIR/tmp" "$BUILD/bench" ||
    die "cannot create $BENCH_DIR"
LOG=$BENCH_DIR/logs
OUT=$BENCH_DIR/out
export TMPDIR=$BENCH_DIR/tmp # GNU sort's spill files go next to the data, not to /tmp

# ---- inputs -------------------------------------------------------------------------------
TEXT_MB=$(awk -v s="$SCALE" 'BEGIN { v = int(1024 * s + 0.5); print (v < 1 ? 1 : v) }')
HC_MB=$(awk -v s="$SCALE" 'BEGIN { v = int(256 * s + 0.5); print (v < 1 ? 1 : v) }')
TERA_N=$(awk -v s="$SCALE" 'BEGIN { v = int(10000000 * s + 0.5); print (v < 1000 ? 1000 : v) }')

# gen NAME ARGS...: BENCH_DIR/NAME made by `ember gen ARGS... BENCH_DIR/NAME`, unless already
# there from the same ARGS (recorded in BENCH_DIR/NAME.params).
gen() {
    local name=$1
    shift
    local path=$BENCH_DIR/$name params="$*"
    if [ "${BENCH_REGEN:-0}" != 1 ] && [ -e "$path" ] &&
        [ "$(cat "$path.params" 2>/dev/null)" = "$params" ]; then
        echo "bench: reusing $path ($params)"
        return 0
    fi
    [ -x "$EMBER_CMD" ] || die "cannot generate $name: '$EMBER_CMD' is missing (the ember \
command with 'ember gen', src/cli/gen.c, is not built yet; set BENCH_EMBER to another one)"
    rm -rf "$path" "$path.params"
    echo "bench: generating $path: ember $params"
    "$EMBER_CMD" "$@" "$path" >"$LOG/gen-$name.log" 2>&1 ||
        die "'ember $params $path' failed: $(tail -3 "$LOG/gen-$name.log")"
    [ -e "$path" ] || die "'ember $params $path' did not create $path"
    echo "$params" >"$path.params"
}

gen text gen text --size "${TEXT_MB}m" --seed 1
gen text-hc gen text-hc --size "${HC_MB}m" --seed 1
gen terasort gen terasort --records "$TERA_N" --seed 1

# files PATH: the input files PATH stands for (a file, or a directory's visible files).
files() {
    if [ -d "$1" ]; then
        find -H "$1" -maxdepth 1 -type f ! -name '.*' ! -name '_*' | LC_ALL=C sort
    else
        echo "$1"
    fi
}
bytes_of() { files "$1" | tr '\n' '\0' | xargs -0 cat | wc -c; }
warm() { files "$1" | tr '\n' '\0' | xargs -0 cat >/dev/null; } # same page-cache state for all

# ---- running and recording ----------------------------------------------------------------
declare -A TIME RSS STATUS NOTE
declare -A WL_BYTES WL_RECS
FAIL=0
ROWS=() # "workload|system" in table order

# run WORKLOAD SYSTEM TIMEOUT CMD...: times CMD; sets STATUS[w|s] to ok, timeout or failed.
run() {
    local w=$1 s=$2 limit=$3
    shift 3
    local key="$w|$s" tf="$LOG/$w.$s.time"
    ROWS+=("$key")
    echo "bench: $w / $s ..."
    /usr/bin/time -f '%e %M' -o "$tf" timeout -k 10 "$limit" "$@" \
        >"$LOG/$w.$s.out" 2>"$LOG/$w.$s.err"
    local rc=$?
    local last
    last=$(tail -1 "$tf" 2>/dev/null)
    TIME[$key]=${last%% *}
    RSS[$key]=${last##* }
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        STATUS[$key]=timeout
        NOTE[$key]="killed after ${limit}s"
        echo "bench: $w / $s TIMED OUT after ${limit}s" >&2
        case $s in ceiling | ember) FAIL=1 ;; esac # a peer's timeout is a result, not a failure
    elif [ $rc -ne 0 ]; then
        STATUS[$key]=failed
        NOTE[$key]="exit $rc, see $LOG/$w.$s.err"
        FAIL=1
        echo "bench: *** $w / $s FAILED (exit $rc) ***" >&2
        tail -5 "$LOG/$w.$s.err" >&2
    else
        STATUS[$key]=ok
    fi
}

skip_row() { # skip_row WORKLOAD SYSTEM WHY
    ROWS+=("$1|$2")
    STATUS[$1|$2]=skip
    NOTE[$1|$2]=$3
}

mismatch() { # mismatch WORKLOAD SYSTEM WHAT
    STATUS[$1|$2]=mismatch
    NOTE[$1|$2]=$3
    FAIL=1
    {
        echo "bench: ********************************************************************"
        echo "bench: *** OUTPUT MISMATCH: $1 / $2: $3"
        echo "bench: ********************************************************************"
    } >&2
}

# A "word<TAB>count" listing in byte order, from a file or a directory of part files.
wc_norm() { files "$1" | tr '\n' '\0' | xargs -0 cat | LC_ALL=C sort; }

skipped() { [[ $SKIP == *" $1 "* ]]; }
EX=$BUILD/examples

# ---- word count (two corpora) ---------------------------------------------------------------
wordcount() {
    local w=$1 in=$2
    local o=$OUT/$w
    mkdir -p "$o"
    warm "$in"
    WL_BYTES[$w]=$(bytes_of "$in")

    rm -f "$o/ceiling"
    run "$w" ceiling "$TIMEOUT" "$CEIL_WC" "$in" "$o/ceiling"
    if [ "${STATUS[$w|ceiling]}" != ok ]; then
        echo "bench: the $w ceiling did not finish: its workload cannot be verified" >&2
        FAIL=1
        return
    fi
    WL_RECS[$w]=$(awk '{ for (i = 1; i < NF; i++) if ($i == "words") print $(i + 1) }' \
        "$LOG/$w.ceiling.out")
    wc_norm "$o/ceiling" >"$o/expected"

    if skipped ember; then
        skip_row "$w" ember "skipped (BENCH_SKIP)"
    elif [ ! -x "$EX/wordcount" ]; then
        skip_row "$w" ember "not built ($EX/wordcount)"
    else
        rm -rf "$o/ember"
        # shellcheck disable=SC2086
        run "$w" ember "$TIMEOUT" "$EX/wordcount" --master "$MASTER" $EMBER_ARGS "$in" "$o/ember"
        if [ "${STATUS[$w|ember]}" = ok ] && ! wc_norm "$o/ember" | cmp -s - "$o/expected"; then
            mismatch "$w" ember "word counts differ from the ceiling's ($o/ember vs $o/ceiling)"
        fi
    fi

    if skipped dask; then
        skip_row "$w" dask "skipped (BENCH_SKIP)"
    elif [ $HAVE_DASK = 0 ]; then
        skip_row "$w" dask "not installed (python3-distributed, python3-numpy)"
    else
        rm -f "$o/dask"
        local split
        split=$(awk -v b="${WL_BYTES[$w]}" 'BEGIN { s = b / 1048576 / 16; print (s > 32 ? 32 : (s < 0.0625 ? 0.0625 : s)) }')
        run "$w" dask "$DASK_TIMEOUT" "$PY" "$SRC/bench/dask_wordcount.py" --split-mb "$split" \
            "$in" "$o/dask"
        if [ "${STATUS[$w|dask]}" = ok ] && ! wc_norm "$o/dask" | cmp -s - "$o/expected"; then
            mismatch "$w" dask "word counts differ from the ceiling's ($o/dask)"
        fi
    fi

    if skipped coreutils; then
        skip_row "$w" coreutils "skipped (BENCH_SKIP)"
    else
        rm -f "$o/coreutils"
        local -a fl
        mapfile -t fl < <(files "$in")
        run "$w" coreutils "$TIMEOUT" bash -o pipefail -c \
            'cat "${@:2}" | LC_ALL=C tr -s '"' \t\r\v\f'"' '"'\n'"' | LC_ALL=C sort | uniq -c >"$1"' \
            _ "$o/coreutils" "${fl[@]}"
        if [ "${STATUS[$w|coreutils]}" = ok ] &&
            ! awk 'NF == 2 { print $2 "\t" $1 }' "$o/coreutils" | LC_ALL=C sort |
            cmp -s - "$o/expected"; then
            mismatch "$w" coreutils "word counts differ from the ceiling's ($o/coreutils)"
        fi
    fi
}

# ---- terasort -----------------------------------------------------------------------------
# check_sorted WORKLOAD SYSTEM OUTPUT: sorted, and the same records (count + checksum) as input.
check_sorted() {
    local got
    got=$("$CEIL_SORT" --check "$3" 2>&1)
    if [ "$got" != "$TERA_EXPECT" ]; then
        mismatch "$1" "$2" "got '$got', want '$TERA_EXPECT'"
    fi
}

terasort() {
    local w=terasort in=$BENCH_DIR/terasort o=$OUT/terasort
    mkdir -p "$o"
    local sum
    sum=$("$CEIL_SORT" --check "$in") || die "cannot read the terasort input $in: $sum"
    TERA_EXPECT=${sum% sorted *}" sorted yes"
    WL_BYTES[$w]=$(awk '{ for (i = 1; i < NF; i++) if ($i == "bytes") print $(i + 1) }' <<<"$sum")
    WL_RECS[$w]=$(awk '{ for (i = 1; i < NF; i++) if ($i == "records") print $(i + 1) }' <<<"$sum")
    warm "$in"

    rm -f "$o/ceiling"
    run "$w" ceiling "$TIMEOUT" "$CEIL_SORT" "$in" "$o/ceiling"
    [ "${STATUS[$w|ceiling]}" = ok ] && check_sorted "$w" ceiling "$o/ceiling"

    if skipped ember; then
        skip_row "$w" ember "skipped (BENCH_SKIP)"
    elif [ ! -x "$EX/terasort" ]; then
        skip_row "$w" ember "not built ($EX/terasort)"
    else
        rm -rf "$o/ember"
        # shellcheck disable=SC2086
        run "$w" ember "$TIMEOUT" "$EX/terasort" --master "$MASTER" $EMBER_ARGS "$in" "$o/ember"
        [ "${STATUS[$w|ember]}" = ok ] && check_sorted "$w" ember "$o/ember"
    fi

    if skipped dask; then
        skip_row "$w" dask "skipped (BENCH_SKIP)"
    elif [ $HAVE_DASK = 0 ]; then
        skip_row "$w" dask "not installed (python3-distributed, python3-numpy)"
    else
        rm -rf "$o/dask"
        local split
        split=$(awk -v b="${WL_BYTES[$w]}" 'BEGIN { s = b / 1048576 / 16; print (s > 64 ? 64 : (s < 0.0625 ? 0.0625 : s)) }')
        run "$w" dask "$DASK_TIMEOUT" "$PY" "$SRC/bench/dask_terasort.py" --split-mb "$split" \
            "$in" "$o/dask"
        [ "${STATUS[$w|dask]}" = ok ] && check_sorted "$w" dask "$o/dask"
    fi

    if skipped coreutils; then
        skip_row "$w" coreutils "skipped (BENCH_SKIP)"
    else
        # Binary records cannot go through sort(1) as they are (keys may hold newlines), so each
        # record becomes one line of 200 hex digits; byte order of the hex is the key order.
        rm -f "$o/coreutils"
        local -a fl
        mapfile -t fl < <(files "$in")
        run "$w" coreutils "$TIMEOUT" bash -o pipefail -c \
            'cat "${@:2}" | basenc --base16 -w 200 | LC_ALL=C sort | basenc -d --base16 >"$1"' \
            _ "$o/coreutils" "${fl[@]}"
        [ "${STATUS[$w|coreutils]}" = ok ] && check_sorted "$w" coreutils "$o/coreutils"
    fi
}

# ---- framework overhead: empty job, 10,000 tiny tasks --------------------------------------
# Both rows come from one program run: BUILD/bench/ember_tasks (the lead's micro-benchmark; also
# looked for as BUILD/bench/empty_jobs) and bench/dask_tasks.py print "empty_job_ms X" and
# "tasks_per_s Y".
tasks_from() { # tasks_from SYSTEM: fill the two rows from the log of the run "tasks|SYSTEM"
    local s=$1 k="tasks|$1"
    ROWS=("${ROWS[@]/#$k/}")
    local ms tps
    ms=$(awk '$1 == "empty_job_ms" { print $2 }' "$LOG/tasks.$s.out")
    tps=$(awk '$1 == "tasks_per_s" { print $2 }' "$LOG/tasks.$s.out")
    ROWS+=("empty job|$s" "10k tasks|$s")
    for r in "empty job|$s" "10k tasks|$s"; do
        STATUS[$r]=${STATUS[$k]}
        NOTE[$r]=${NOTE[$k]:-}
        RSS[$r]=${RSS[$k]:-}
    done
    if [ "${STATUS[$k]}" = ok ]; then
        if [ -z "$ms" ] || [ -z "$tps" ]; then
            for r in "empty job|$s" "10k tasks|$s"; do
                STATUS[$r]=failed
                NOTE[$r]="no empty_job_ms/tasks_per_s lines in $LOG/tasks.$s.out"
            done
            FAIL=1
            return
        fi
        TIME[empty job|$s]=$(awk -v m="$ms" 'BEGIN { printf "%.3g", m / 1000 }')
        TIME[10k tasks|$s]=$(awk -v t="$tps" 'BEGIN { printf "%.3g", 10000 / t }')
        WL_RECS[10k tasks]=10000
    fi
}

overhead() {
    local bin=""
    for b in "$BUILD/bench/ember_tasks" "$BUILD/bench/empty_jobs"; do
        [ -x "$b" ] && bin=$b && break
    done
    if skipped ember; then
        skip_row "empty job" ember "skipped (BENCH_SKIP)"
        skip_row "10k tasks" ember "skipped (BENCH_SKIP)"
    elif [ -z "$bin" ]; then
        skip_row "empty job" ember "n/a (BUILD/bench/ember_tasks not built)"
        skip_row "10k tasks" ember "n/a (BUILD/bench/ember_tasks not built)"
    else
        run tasks ember "$TIMEOUT" "$bin" --master "$MASTER"
        tasks_from ember
    fi
    if skipped dask; then
        skip_row "empty job" dask "skipped (BENCH_SKIP)"
        skip_row "10k tasks" dask "skipped (BENCH_SKIP)"
    elif [ $HAVE_DASK = 0 ]; then
        skip_row "empty job" dask "not installed"
        skip_row "10k tasks" dask "not installed"
    else
        run tasks dask "$DASK_TIMEOUT" "$PY" "$SRC/bench/dask_tasks.py"
        tasks_from dask
    fi
}

# ---- the cluster path: local-cluster beside local[2] -----------------------------------------
# Executors as processes, tasks shipped over the control plane, shuffle blocks fetched between
# executors. Rows "ember-lc"; fetch throughput between two processes from bench/fetch_bench.
CLUSTER_MASTER=${BENCH_CLUSTER_MASTER:-local-cluster[2,1,4096]}
cluster() {
    skipped ember && return
    local o=$OUT/wordcount in=$BENCH_DIR/text
    if [ -x "$EX/wordcount" ] && [ -f "$o/expected" ]; then
        rm -rf "$o/ember-lc"
        warm "$in"
        # shellcheck disable=SC2086
        run wordcount ember-lc "$TIMEOUT" "$EX/wordcount" --master "$CLUSTER_MASTER" $EMBER_ARGS \
            "$in" "$o/ember-lc"
        if [ "${STATUS[wordcount|ember-lc]}" = ok ] && ! wc_norm "$o/ember-lc" | cmp -s - "$o/expected"; then
            mismatch wordcount ember-lc "word counts differ from the ceiling's ($o/ember-lc)"
        fi
    fi
    if [ -x "$BUILD/bench/ember_tasks" ]; then
        run tasks ember-lc "$TIMEOUT" "$BUILD/bench/ember_tasks" --master "$CLUSTER_MASTER"
        tasks_from ember-lc
    fi
    if [ -x "$BUILD/bench/fetch_bench" ]; then
        local mib
        mib=$(awk -v s="$SCALE" 'BEGIN { m = int(1024 * s); print (m < 16 ? 16 : m) }')
        echo "bench: fetch / ember ..."
        "$BUILD/bench/fetch_bench" --size "$mib" >"$LOG/fetch.out" 2>"$LOG/fetch.err" || FAIL=1
    fi
}

wordcount wordcount "$BENCH_DIR/text"
wordcount wordcount-hc "$BENCH_DIR/text-hc"
terasort
overhead
cluster

# Dask's peak memory is the whole cluster's, reported by the script itself (dask_common.py);
# /usr/bin/time would see only the largest single process.
for key in "${ROWS[@]}"; do
    [ -n "$key" ] || continue
    s=${key#*|}
    w=${key%|*}
    [ "$s" = dask ] && [ "${STATUS[$key]}" = ok ] || continue
    lf=$LOG/$w.dask.out
    [ "$w" = "empty job" ] || [ "$w" = "10k tasks" ] && lf=$LOG/tasks.dask.out
    v=$(awk '$1 == "peak_rss_kib" { print $2 }' "$lf")
    [ -n "$v" ] && RSS[$key]=$v
done

# ---- the table ----------------------------------------------------------------------------
f2() { awk -v a="$1" -v b="$2" -v m="${3:-1}" -v p="${4:-%.2f}" \
    'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf p "\n", a * m / b }'; }
ok() { [ "${STATUS[$1]:-}" = ok ] && [ -n "${TIME[$1]:-}" ]; }
ratio() { # ratio T_OTHER T_THIS: T_OTHER / T_THIS, two significant places when small
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) { print "n/a"; exit } r = a / b
        if (r >= 100) printf "%.0f\n", r; else if (r >= 0.1) printf "%.2f\n", r
        else printf "%.2g\n", r }'
}
per_s() { # per_s COUNT SECONDS: a rate with an M or k suffix
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) { print "n/a"; exit } r = a / b
        if (r >= 1e6) printf "%.2f M\n", r / 1e6; else if (r >= 1e4) printf "%.1f k\n", r / 1e3
        else printf "%.0f\n", r }'
}

# target KEY_EMBER KEY_OTHER LABEL MIN: "LABEL: met (x.xx×)" where x = t_other / t_ember.
target() {
    if ! ok "$1"; then
        echo "$3: n/a (no Ember time)"
    elif ! ok "$2"; then
        echo "$3: n/a (no ${2#*|} time)"
    else
        awk -v e="${TIME[$1]}" -v o="${TIME[$2]}" -v l="$3" -v m="$4" 'BEGIN {
            if (e <= 0) e = 0.005
            r = o / e; printf "%s: %s (%.2fx)\n", l, (r >= m ? "met" : "NOT MET"), r }'
    fi
}

table_row() { printf '| %-12s | %-9s | %9s | %8s | %11s | %12s | %9s | %9s | %s |\n' "$@"; }
{
    echo "# Ember benchmarks"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)),"
    echo "BENCH_SCALE=$SCALE, Ember master $MASTER. Inputs: text $(f2 "${WL_BYTES[wordcount]:-}" 1 1e-6 '%.0f') MB,"
    echo "high-cardinality text $(f2 "${WL_BYTES[wordcount-hc]:-}" 1 1e-6 '%.0f') MB, terasort ${WL_RECS[terasort]:-?} records."
    echo "Time is wall time of the whole process (start-up included); records are words for word"
    echo "count, 100-byte records for terasort, tasks for '10k tasks'. Peak RSS: /usr/bin/time %M"
    echo "(the largest process of a pipeline) except Dask: the sum of every cluster process's own"
    echo "peak (client+scheduler, 2 nannies, 2 workers; getrusage ru_maxrss). A ratio is the other"
    echo "system's time divided by this row's: above 1 means this row is faster. See bench/README.md."
    echo
    table_row workload system "time s" "MB/s" "records/s" "peak RSS MiB" "vs ceil" "vs Ember" "target"
    table_row "---" "---" "---:" "---:" "---:" "---:" "---:" "---:" "---"
    for key in "${ROWS[@]}"; do
        [ -n "$key" ] || continue
        w=${key%|*}
        s=${key#*|}
        st=${STATUS[$key]}
        tgt="-"
        case "$w|$s" in
        wordcount*"|ember") tgt=$(target "$key" "$w|ceiling" "≥1.5× ceiling" 1.5) ;;
        wordcount*"|dask") tgt=$(target "$w|ember" "$key" "Ember ≥10× Dask" 10) ;;
        wordcount*"|coreutils") tgt=$(target "$w|ember" "$key" "Ember ≥5× coreutils" 5) ;;
        "terasort|ember") tgt=$(target "$key" "$w|ceiling" "≥1.2× ceiling" 1.2) ;;
        "terasort|dask") tgt=$(target "$w|ember" "$key" "Ember ≥10× Dask" 10) ;;
        "wordcount|ember-lc") tgt=$(target "$key" "$w|ember" "within 15% of local[2]" 0.87) ;;
        "empty job|ember-lc") tgt=$(awk -v t="${TIME[$key]:-}" 'BEGIN { if (t == "") print "n/a"
            else printf "≤ 5 ms: %s\n", (t * 1000 <= 5 ? "met" : "NOT MET") }') ;;
        "10k tasks|ember-lc") tgt=$(awk -v t="${TIME[$key]:-}" 'BEGIN { if (t == "") print "n/a"
            else printf "≥ 20k tasks/s: %s\n", (10000 / t >= 20000 ? "met" : "NOT MET") }') ;;
        esac
        if [ "$st" = ok ]; then
            t=${TIME[$key]}
            mbs=n/a recs=n/a
            [ -n "${WL_BYTES[$w]:-}" ] && mbs=$(f2 "${WL_BYTES[$w]}" "$t" 1e-6 '%.1f')
            [ -n "${WL_RECS[$w]:-}" ] && recs=$(per_s "${WL_RECS[$w]}" "$t")
            rss=$(f2 "${RSS[$key]:-}" 1024 1 '%.0f')
            table_row "$w" "$s" "$t" "$mbs" "$recs" "$rss" \
                "$(ok "$w|ceiling" && ratio "${TIME[$w|ceiling]}" "$t" || echo n/a)" \
                "$(ok "$w|ember" && ratio "${TIME[$w|ember]}" "$t" || echo n/a)" "$tgt"
        else
            case $st in
            mismatch) label="WRONG OUTPUT: ${NOTE[$key]}" ;;
            failed) label="FAILED: ${NOTE[$key]}" ;;
            timeout) label="timeout: ${NOTE[$key]}" ;;
            *) label=${NOTE[$key]} ;;
            esac
            table_row "$w" "$s" "${TIME[$key]:--}" - - - - - "$label"
        fi
    done
    echo
    if [ -f "$LOG/tasks.ember-lc.out" ]; then
        awk -v m="$CLUSTER_MASTER" '$1 == "start_ms" { s = $2 } $1 == "first_task_ms" { f = $2 }
            END { if (s != "") printf "Cluster start on %s: context ready in %s ms (daemons, executors registered), first task %s ms later; target start to first task ≤ 100 ms: %s.\n", m, s, f, (s + f <= 100 ? "met" : "NOT MET") }' \
            "$LOG/tasks.ember-lc.out"
    fi
    if [ -f "$LOG/fetch.out" ]; then
        awk '$1 == "fetch_raw_gb_per_s" { r = $2 } $1 == "read_gb_per_s" { d = $2 } $1 == "peak_rss_mib" { m = $2 }
            END { if (r != "") printf "Shuffle fetch between two processes on loopback (bench/fetch_bench): %s GB/s raw, %s GB/s through the reader (decode included), fetching process peak RSS %s MiB; target ≥ 1 GB/s: %s.\n", r, d, m, (r >= 1 ? "met" : "NOT MET") }' \
            "$LOG/fetch.out"
    fi
    echo
    if [ $FAIL = 0 ]; then
        echo "Every system that ran produced the ceiling's output."
    else
        echo "**SOME RUNS FAILED OR DISAGREED WITH THE CEILING** (logs: $LOG)."
    fi
} >"$BUILD/bench/results.md"

echo
cat "$BUILD/bench/results.md"
echo
echo "bench: table written to $BUILD/bench/results.md; inputs, outputs and logs in $BENCH_DIR"
exit $FAIL
