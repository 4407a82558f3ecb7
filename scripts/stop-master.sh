#!/usr/bin/env bash
# Stops the master daemon of this machine through its pid file (SIGTERM, bounded wait, SIGKILL).
# Knobs: see scripts/ember-env.sh.
set -u
# shellcheck source=ember-env.sh source-path=SCRIPTDIR
. "$(dirname "$0")/ember-env.sh"
sh -c "$(stop_cmd master)"
