#!/usr/bin/env bash
# Set everything up, then run the main job on the local default: a local Elasticsearch
# node, the bundled sample news site on 127.0.0.1, and the streaming pipeline on Prism
# for a bounded time; ends by printing what landed. Extra arguments go to
# `wirestream demo` (e.g. --duration 120).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/setup.sh
exec .venv/bin/wirestream demo "$@"
