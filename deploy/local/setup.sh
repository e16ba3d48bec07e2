#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a virtualenv in .venv with the pinned Python
# packages (constraints.txt), Beam's Prism runner built with Go, the Beam job server for
# Flink and the Elasticsearch and OpenSearch distributions fetched with Maven into the
# cache (outside the repo).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
for tool in "$PYTHON" go mvn java; do
  command -v "$tool" >/dev/null || { echo "error: '$tool' is required but not installed" >&2; exit 1; }
done

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.wirestream-installed
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "==> installing Python packages (pinned by constraints.txt)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
  touch "$stamp"
fi

echo "==> building Prism and the Flink job server, fetching Elasticsearch and OpenSearch (cached after the first run)"
.venv/bin/wirestream setup
