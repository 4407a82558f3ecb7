#!/usr/bin/env bash
# Stops the workers of $EMBER_CONF_DIR/workers, then the master on this machine.
# Knobs: see scripts/ember-env.sh.
set -u
dir=$(dirname "$0")
"$dir/stop-workers.sh"
w=$?
"$dir/stop-master.sh" || exit 1
exit $w
