#!/usr/bin/env bash
# Starts a worker daemon on every host of $EMBER_CONF_DIR/workers (default: localhost), over
# `ssh -o BatchMode=yes` except for localhost / 127.0.0.1 / ::1, connecting to
# ember://$EMBER_MASTER_HOST:$EMBER_MASTER_PORT. Exit status 1 when any host failed.
# Knobs: see scripts/ember-env.sh.
set -u
# shellcheck source=ember-env.sh source-path=SCRIPTDIR
. "$(dirname "$0")/ember-env.sh"
url="ember://$EMBER_MASTER_HOST:$EMBER_MASTER_PORT"
status=0
while read -r host; do
    if ! on_host "$host" "$(daemon_cmd worker --master "$url") ${EMBER_WORKER_OPTS:-}" </dev/null; then
        echo "start-workers: the worker on $host did not start" >&2
        status=1
    fi
done < <(ember_hosts)
exit $status
