#!/usr/bin/env bash
# Manage the local single-node Elasticsearch used by the demo and the tests.
# Usage: deploy/local/elasticsearch.sh start|stop|status [--port N] [--heap 1g] [--timeout S]
# Env: PYTHON (default python3), WIRESTREAM_CACHE (install/data dir), ES_JAVA_HOME (JDK >= 21).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
exec "${PYTHON:-python3}" -m pipeline.services.local_es "$@"
