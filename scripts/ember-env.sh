# shellcheck shell=bash
# Shared settings of the cluster scripts (sourced by start-*.sh / stop-*.sh; not run by itself).
#
# Environment knobs (all optional):
#   EMBER_HOME         the Ember checkout/install (default: this script's parent directory);
#                      daemons are started with it as working directory, on every machine
#   EMBER_BIN          the ember binary (default $EMBER_HOME/build/bin/ember, else `ember` on
#                      PATH); the same path is used on every machine
#   EMBER_CONF_DIR     holds `workers` and ember-defaults.conf (default $EMBER_HOME/conf)
#   EMBER_MASTER_HOST  the address workers connect to (default: `hostname -f` of this machine)
#   EMBER_MASTER_PORT  the master's port (default 7077)
#   EMBER_MASTER_BIND  the address the master listens on (default 0.0.0.0)
#   EMBER_LOG_DIR      daemon logs (default $EMBER_HOME/logs)
#   EMBER_PID_DIR      daemon pid files (default /tmp)
#   EMBER_MASTER_OPTS / EMBER_WORKER_OPTS   extra arguments, e.g. "--cores 8 --memory 16g"
#   EMBER_SSH_OPTS     extra ssh options (BatchMode=yes is always set)
#   EMBER_STOP_TIMEOUT seconds to wait after SIGTERM before SIGKILL (default 10)
EMBER_HOME=${EMBER_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
if [ -z "${EMBER_BIN:-}" ]; then
    if [ -x "$EMBER_HOME/build/bin/ember" ]; then
        EMBER_BIN=$EMBER_HOME/build/bin/ember
    else
        EMBER_BIN=$(command -v ember || echo ember)
    fi
fi
EMBER_CONF_DIR=${EMBER_CONF_DIR:-$EMBER_HOME/conf}
EMBER_MASTER_HOST=${EMBER_MASTER_HOST:-$(hostname -f 2>/dev/null || uname -n)}
EMBER_MASTER_PORT=${EMBER_MASTER_PORT:-7077}
EMBER_MASTER_BIND=${EMBER_MASTER_BIND:-0.0.0.0}
EMBER_LOG_DIR=${EMBER_LOG_DIR:-$EMBER_HOME/logs}
EMBER_PID_DIR=${EMBER_PID_DIR:-/tmp}
EMBER_STOP_TIMEOUT=${EMBER_STOP_TIMEOUT:-10}

# q STRING: STRING quoted for a POSIX shell.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# ember_hosts: the worker hosts, one a line: $EMBER_CONF_DIR/workers without comments and blank
# lines, or localhost when the file does not exist.
ember_hosts()
{
    if [ -f "$EMBER_CONF_DIR/workers" ]; then
        sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e 's/^[[:space:]]*//' "$EMBER_CONF_DIR/workers" |
            grep -v '^$'
    else
        echo localhost
    fi
}

is_local() { case "$1" in localhost | 127.0.0.1 | ::1) return 0 ;; *) return 1 ;; esac; }

# on_host HOST COMMAND: runs the shell COMMAND on HOST: directly for localhost / 127.0.0.1 /
# ::1, else over ssh (BatchMode: never prompts; set up passwordless keys first).
on_host()
{
    if is_local "$1"; then
        sh -c "$2"
    else
        # shellcheck disable=SC2086
        ssh -o BatchMode=yes ${EMBER_SSH_OPTS:-} "$1" "$2"
    fi
}

# daemon_cmd ROLE ARGS...: the command line that starts an ember daemon of ROLE.
daemon_cmd()
{
    local role=$1
    shift
    local c
    c="cd $(q "$EMBER_HOME") && EMBER_CONF_DIR=$(q "$EMBER_CONF_DIR") $(q "$EMBER_BIN") $role"
    c="$c --daemon --log-dir $(q "$EMBER_LOG_DIR") --pid-dir $(q "$EMBER_PID_DIR")"
    for a in "$@"; do c="$c $(q "$a")"; done
    printf '%s' "$c"
}

# stop_cmd ROLE: a shell command that stops this user's ROLE daemons of the machine it runs on
# through their pid files: SIGTERM, a bounded wait, then SIGKILL; removes the pid files.
stop_cmd()
{
    local role=$1 pat
    if [ "$role" = master ]; then pat="master-\$(uname -n)"; else pat="worker-*-\$(uname -n)"; fi
    cat <<EOS
n=0; for f in $(q "$EMBER_PID_DIR")/ember-\$(id -un)-$pat.pid; do
  [ -f "\$f" ] || continue; p=\$(cat "\$f"); n=\$((n+1))
  if [ -n "\$p" ] && kill -TERM "\$p" 2>/dev/null; then
    i=0; while kill -0 "\$p" 2>/dev/null && [ \$i -lt $((EMBER_STOP_TIMEOUT * 10)) ]; do sleep 0.1; i=\$((i+1)); done
    if kill -0 "\$p" 2>/dev/null; then echo "\$(uname -n): $role \$p still running after ${EMBER_STOP_TIMEOUT}s; sending KILL"; kill -KILL "\$p"; fi
    echo "\$(uname -n): stopped $role (pid \$p)"
  else echo "\$(uname -n): removing stale pid file \$f (process \$p not running)"; fi
  rm -f "\$f"
done; [ \$n -gt 0 ] || echo "\$(uname -n): no $role to stop"
EOS
}
