"""Running the real CLI from tests, and counting what reached the index."""

from __future__ import annotations

import re
import subprocess
import sys

from pipeline.config import REPO_ROOT


def wirestream(*args: str) -> subprocess.Popen:
    """Start ``wirestream ARGS`` in its own session (so a test can signal its group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def doc_count(es_client, alias: str) -> int:
    """Return the documents under ``alias`` after a refresh (0 before it exists)."""
    if not es_client.indices.exists_alias(name=alias):
        return 0
    es_client.indices.refresh(index=alias)
    return es_client.count(index=alias)["count"]


def sink_counts(out: str) -> tuple[int, int, int, int]:
    """Return the run's sink reconciliation: entered, acknowledged, superseded, dead."""
    found = re.search(
        r"sink: (\d+) entered = (\d+) acknowledged .* \+ (\d+) superseded .* \+ (\d+) dead", out
    )
    assert found, out[-3000:]
    entered, acknowledged, superseded, dead = map(int, found.groups())
    return entered, acknowledged, superseded, dead
