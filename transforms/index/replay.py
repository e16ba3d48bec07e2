"""Re-offer documents that went to dead letters only because Elasticsearch could not
take them then (``index:unavailable``: its retry budget ran out during an outage).

``wirestream run`` and ``backfill`` do it at start-up, so an outage longer than the
retry budget heals without a manual step. A replayed file is renamed ``*.replayed``
(kept for audit, never read again); records that still fail, and records of other
stages or reasons (rejections want a fix first: ``wirestream replay``), stay in a new
dead-letter file. Idempotent: a replay never overwrites a newer copy, since stream
documents are replayed with ``create`` and backfill ones keep their external version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from transforms.dead_letters import dead_letter_paths, read_dead_letter_file, write_dead_letter_file
from transforms.index.bulk import SUPERSEDED, bulk_index
from transforms.settings import ElasticsearchSettings

TRANSIENT = "unavailable"
SINK_STAGES = ("index", "stats", "stories")  # the articles, ingestion-health, stories sinks


@dataclass
class Replayed:
    files: int = 0
    indexed: int = 0
    superseded: int = 0
    still_failing: int = 0

    def line(self) -> str:
        return (
            f"replayed {self.indexed + self.superseded} documents dead-lettered during an "
            f"Elasticsearch outage ({self.files} files): {self.indexed} indexed, "
            f"{self.superseded} already there"
            + (f", {self.still_failing} still failing (kept)" if self.still_failing else "")
        )


def replay_action(payload: dict[str, Any]) -> dict[str, Any]:
    """Return the bulk action that re-offers ``payload`` without overwriting newer data."""
    if "version" in payload:  # a backfill copy: the newest crawl wins anyway
        return payload
    return {**payload, "_op_type": "create"}


def _replay_file(
    client, directory: str, stage: str, path: str, settings: ElasticsearchSettings, done: Replayed
) -> None:
    """Re-offer one file's transient records; keep what still fails in a new file."""
    from apache_beam.io.filesystems import FileSystems

    records = read_dead_letter_file(path)
    transient = [
        r
        for r in records
        if r.get("stage") == stage and r.get("reason") == TRANSIENT and r.get("payload")
    ]
    if not transient:
        return
    actions = {r["payload"]["_id"]: replay_action(r["payload"]) for r in transient}
    indexed, failed = bulk_index(client, list(actions.values()), settings)
    failing = {action["_id"] for action, reason, _ in failed if reason != SUPERSEDED}
    done.files += 1
    done.indexed += indexed
    done.superseded += len(actions) - indexed - len(failing)
    done.still_failing += len(failing)
    keep = [r for r in records if r not in transient or r["payload"]["_id"] in failing]
    if keep:
        lines = [json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in keep]
        write_dead_letter_file(directory, stage, lines)
    FileSystems.rename([path], [path + ".replayed"])


@dataclass
class ReplayedFiles:
    """What ``wirestream replay`` did: documents re-indexed, those still failing, and the
    records of other stages (URLs to fetch again, not documents)."""

    offered: int
    indexed: int
    failed: list[tuple[dict[str, Any], str, str]]
    others: list[dict[str, Any]]

    def lines(self, shown: int = 10) -> list[str]:
        """Return the report: counts, then a few failing documents and other records."""
        lines = [
            f"re-indexed {self.indexed} of {self.offered} documents; "
            f"{len(self.failed)} still failing"
        ]
        lines += [
            f"  {reason}: {action['_source'].get('canonical_url')}"
            for action, reason, _ in self.failed[:shown]
        ]
        if self.others:
            lines.append(
                f"{len(self.others)} records from other stages (fetch/extract) name URLs "
                "to fetch again:"
            )
            lines += [f"  {r['stage']} {r['reason']}: {r['url']}" for r in self.others[:shown]]
        return lines


def replay_records(client, records: list[dict[str, Any]], settings: ElasticsearchSettings):
    """Re-index the sinks' documents in dead-letter ``records`` (any reason: after a fix,
    a rejection may pass); return a ``ReplayedFiles``."""
    sink = [r for r in records if r.get("stage") in SINK_STAGES and r.get("payload")]
    actions = [r["payload"] for r in sink]
    indexed, failed = bulk_index(client, actions, settings) if actions else (0, [])
    others = [r for r in records if r not in sink]
    return ReplayedFiles(len(actions), indexed, failed, others)


def replay_transient(client, directory: str, settings: ElasticsearchSettings) -> Replayed:
    """Replay the transient index dead letters under ``directory``; return the counts."""
    from apache_beam.io.filesystems import FileSystems

    done = Replayed()
    # the sinks' failures are in their own files (<stage>-...): the others need no reading
    for stage in SINK_STAGES:
        for path in dead_letter_paths([FileSystems.join(directory, f"{stage}-*.jsonl")]):
            _replay_file(client, directory, stage, path, settings, done)
    return done
