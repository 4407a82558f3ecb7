#!/usr/bin/env bash
# Starts the standalone master on this machine as a daemon (ember master --daemon), listening on
# $EMBER_MASTER_BIND:$EMBER_MASTER_PORT. Knobs: see scripts/ember-env.sh.
set -u
# shellcheck source=ember-env.sh source-path=SCRIPTDIR
. "$(dirname "$0")/ember-env.sh"
sh -c "$(daemon_cmd master --host "$EMBER_MASTER_BIND" --port "$EMBER_MASTER_PORT") ${EMBER_MASTER_OPTS:-}"
