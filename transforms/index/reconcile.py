"""The sink's reconciliation at the end of a run: every document that entered the
Elasticsearch sink was acknowledged, superseded by another copy, or dead-lettered."""

from __future__ import annotations

# The counters the sink writes (namespace ``wirestream``) and the run reads back by name.
TO_INDEX = "to_index"  # documents that entered the sink
INDEXED = "indexed"  # acknowledged by the index
SUPERSEDED_COPIES = "index_superseded"  # a copy of another, or older than what is indexed
WAITED_MS = "sink_waited_ms"  # time batches waited for the node (outages, write blocks)
FAILED_PREFIX = "failed."  # then ``<stage>:<reason>`` (``transforms.dead_letters``)


def failures(totals: dict[str, int]) -> dict[str, int]:
    """Return the ``failed`` counters of a job's totals by ``<stage>:<reason>``."""
    return {
        key.removeprefix(FAILED_PREFIX): value
        for key, value in totals.items()
        if key.startswith(FAILED_PREFIX)
    }


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
    return reconcile(
        totals.get(TO_INDEX, 0),
        totals.get(INDEXED, 0),
        totals.get(SUPERSEDED_COPIES, 0),
        index_dead_letters(failures(totals)),
        totals.get(WAITED_MS, 0),
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
