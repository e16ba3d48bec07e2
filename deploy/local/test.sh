#!/usr/bin/env bash
# Set everything up, start the local Elasticsearch node (if not already running),
# run the whole test suite, and stop the node again if this script started it.
# Extra arguments go to pytest (e.g. -k feeds, -m "not integration").
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/setup.sh

started=0
if ! .venv/bin/wirestream es status >/dev/null 2>&1; then
  .venv/bin/wirestream es start
  started=1
fi
stop_node() { [ "$started" = 1 ] && .venv/bin/wirestream es stop || true; }
trap stop_node EXIT

.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
