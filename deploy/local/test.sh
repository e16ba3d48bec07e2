#!/usr/bin/env bash
# Set everything up, start the local Elasticsearch and OpenSearch nodes (those not
# already running), run the whole test suite, and stop the nodes this script started.
# Extra arguments go to pytest (e.g. -k feeds, -m "not integration").
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/setup.sh

started=""
for engine in es opensearch; do
  if ! .venv/bin/wirestream "$engine" status >/dev/null 2>&1; then
    .venv/bin/wirestream "$engine" start
    started="$started $engine"
  fi
done
stop_nodes() { for engine in $started; do .venv/bin/wirestream "$engine" stop || true; done; }
trap stop_nodes EXIT

.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
