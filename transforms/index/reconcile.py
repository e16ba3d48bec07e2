"""The sink's reconciliation at the end of a run: every document that entered the
Elasticsearch sink was acknowledged, superseded by another copy, or dead-lettered."""

from __future__ import annotations


class ReconciliationError(RuntimeError):
    """Documents entered the sink but were neither acknowledged nor dead-lettered."""


def reconcile(
    entered: int, acknowledged: int, superseded: int, dead_lettered: int, waited_ms: int = 0
) -> dict:
    """Return the four counts, ``gap`` (what entered and is not accounted for) and how
    long the sink waited for Elasticsearch to take documents (outages, write blocks)."""
    gap = entered - acknowledged - superseded - dead_lettered
    return {
        "entered": entered,
        "acknowledged": acknowledged,
        "superseded": superseded,
        "dead_lettered": dead_lettered,
        "gap": gap,
        "waited_seconds": waited_ms / 1000,
    }


def index_dead_letters(failed: dict[str, int]) -> int:
    """Return how many documents the sink dead-lettered, from the ``failed`` counters
    (``<stage>:<reason>``: one per failure, see ``transforms.dead_letters``)."""
    return sum(count for key, count in failed.items() if key.startswith("index:"))


def sink_of(totals: dict[str, int]) -> dict:
    """Return the sink's reconciliation from a job's counters by name (``to_index``,
    ``indexed``, ``index_superseded``, ``failed.index:*``, ``sink_waited_ms``)."""
    failed = {key[7:]: value for key, value in totals.items() if key.startswith("failed.")}
    return reconcile(
        totals.get("to_index", 0),
        totals.get("indexed", 0),
        totals.get("index_superseded", 0),
        index_dead_letters(failed),
        totals.get("sink_waited_ms", 0),
    )


def format_sink(sink: dict) -> str:
    """Return the summary line of a reconciliation."""
    line = (
        f"sink: {sink['entered']} entered = {sink['acknowledged']} acknowledged by "
        f"the index + {sink['superseded']} superseded by another copy + "
        f"{sink['dead_lettered']} dead-lettered"
    )
    if sink.get("waited_seconds"):
        line += f"; batches waited {sink['waited_seconds']:.0f}s in all for Elasticsearch"
    return line + ("" if sink["gap"] == 0 else f"; GAP: {sink['gap']:+d} unaccounted for")


def check(sink: dict, hint: str) -> None:
    """Raise ``ReconciliationError`` when documents are missing (a negative gap means a
    runner re-ran some writes and counted them twice: nothing was lost)."""
    if sink["gap"] > 0:
        raise ReconciliationError(
            f"{sink['gap']} documents entered the Elasticsearch sink but were neither "
            f"acknowledged nor dead-lettered; {hint}"
        )
