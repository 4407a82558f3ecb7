#!/usr/bin/env bash
# Starts the master on this machine, then a worker on every host of $EMBER_CONF_DIR/workers.
# Knobs: see scripts/ember-env.sh.
set -u
dir=$(dirname "$0")
"$dir/start-master.sh" || exit 1
"$dir/start-workers.sh"
