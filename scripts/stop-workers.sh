#!/usr/bin/env bash
# Stops the worker daemons on every host of $EMBER_CONF_DIR/workers (default: localhost) through
# their pid files, over ssh except for localhost. Knobs: see scripts/ember-env.sh.
set -u
# shellcheck source=ember-env.sh source-path=SCRIPTDIR
. "$(dirname "$0")/ember-env.sh"
status=0
while read -r host; do
    on_host "$host" "$(stop_cmd worker)" </dev/null || status=1
done < <(ember_hosts | sort -u)
exit $status
