#!/usr/bin/env bash
# The static checks CI runs (and pre-commit runs on each commit): lint, format, the
# import layers (transforms/ never imports pipeline/) and types.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "==> ruff check"; .venv/bin/ruff check .
echo "==> ruff format --check"; .venv/bin/ruff format --check .
echo "==> import layers (lint-imports)"; .venv/bin/lint-imports --no-cache
echo "==> types (mypy pipeline transforms)"; .venv/bin/mypy
