# Shared helpers of the end-to-end tests (sourced by tests/e2e/test_*.sh; not a test itself).
#
# Environment: EMBER_BUILD (the build directory) and EMBER_SRC (the source directory), set by
# ctest; both default to the layout of a checkout with build/. EMBER_TEST_KEEP=1 keeps the
# temporary directory. Every check calls pass or fail; finish prints "N passed, N failed" and
# gives the script's exit status. References are computed by /usr/bin/python3 (standard
# library only) or coreutils, never by Ember itself.
set -u
EMBER_SRC=${EMBER_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
EMBER_BUILD=${EMBER_BUILD:-$EMBER_SRC/build}
PY=/usr/bin/python3
EX=$EMBER_BUILD/examples
EMBER=$EMBER_BUILD/bin/ember
export LC_ALL=C

_tmp_root=${EMBER_TEST_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$_tmp_root"
T=$(mktemp -d "$_tmp_root/e2e-$(basename "$0" .sh).XXXXXX")
passed=0
failed=0

pass() { echo "ok - $1"; passed=$((passed + 1)); }
fail()
{
    echo "FAIL - $1"
    failed=$((failed + 1))
}

# run NAME CMD...: runs CMD with stdout/stderr in $T/NAME.out / $T/NAME.err; sets $rc.
run()
{
    local name=$1
    shift
    "$@" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
}

# show NAME: the first lines of a run's stderr, indented (for failure reports).
show() { sed -n '1,15s/^/    | /p' "$T/$1.err"; }

# expect_ok NAME CMD...: runs CMD and fails the check NAME if it exits non-zero. Returns rc.
expect_ok()
{
    local name=$1
    run "$@"
    if [ "$rc" -ne 0 ]; then
        fail "$name: exit status $rc"
        show "$name"
        return 1
    fi
    return 0
}

need_file()
{
    if [ ! -x "$1" ]; then
        echo "missing $1: build first (cmake --build $EMBER_BUILD)"
        echo "0 passed, 1 failed"
        rm -rf "$T"
        exit 1
    fi
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port()
{
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for FILE REGEX [SECONDS]: polls until FILE has a line matching REGEX (default 15 s).
wait_for()
{
    local deadline=$((SECONDS + ${3:-15}))
    while [ $SECONDS -lt $deadline ]; do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

finish()
{
    if [ "${EMBER_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $T"
    else
        rm -rf "$T"
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}
