"""Write articles to Elasticsearch in bulk, and failures to replayable dead-letter files.

Documents are keyed by a stable hash of the canonical URL (``_id``) and written
with ``index`` (overwrite), so re-running a backfill or restarting a stream never
duplicates. Each document goes to the monthly index of its publish date
(``news-2026.03``; ``news-undated`` without a date) under the ``news`` alias.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from elasticsearch import TransportError, helpers

from pipeline.config import ElasticsearchSettings
from transforms.article import Article, Failure, dead_letter

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
SHARD_KEYS = 4  # parallel bulk writers per pipeline


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


def index_for(article: Article, prefix: str) -> str:
    """Return the monthly index name for ``article``'s publish date."""
    if article.published_at is None:
        return f"{prefix}-undated"
    return f"{prefix}-{article.published_at.astimezone(timezone.utc):%Y.%m}"


def to_document(article: Article) -> dict[str, Any]:
    """Return the Elasticsearch document for ``article``."""
    return {
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "publisher": article.publisher or None,
        "feed_url": article.feed_url,
        "feed_urls": article.feed_urls or ([article.feed_url] if article.feed_url else []),
        "title": article.title,
        "title_normalized": article.title_normalized,
        "body": article.body,
        "body_normalized": article.body_normalized,
        "authors": article.authors,
        "published_at": _iso(article.published_at),
        "fetched_at": _iso(article.fetched_at),
        "language": article.language,
        "tags": article.tags,
        "top_image": article.top_image,
        "word_count": article.word_count,
        "content_hash": article.content_hash,
        "entities": article.entities,
        "entity_counts": article.entity_counts,
        "locations": article.locations,
        "countries": article.countries,
    }


def to_action(article: Article, prefix: str) -> dict[str, Any]:
    """Return the bulk ``index`` action for ``article``."""
    return {
        "_op_type": "index",
        "_index": index_for(article, prefix),
        "_id": article.doc_id,
        "_source": to_document(article),
    }


def bulk_index(client, actions: list[dict[str, Any]], settings: ElasticsearchSettings):
    """Index ``actions``; return (indexed count, [(action, reason, detail)] that failed for good).

    429s are retried per document by the helper; whole-request failures (node down,
    timeouts, 5xx) are retried with exponential backoff, then reported as failed.
    """
    pending = {action["_id"]: action for action in actions}
    indexed, failed = 0, []
    last: tuple[int | str, str] = ("N/A", "")
    for attempt in range(settings.max_retries + 1):
        retry: dict[str, dict[str, Any]] = {}
        try:
            for ok, info in helpers.streaming_bulk(
                client,
                list(pending.values()),
                chunk_size=max(len(pending), 1),
                raise_on_error=False,
                raise_on_exception=False,
                max_retries=settings.max_retries,
                initial_backoff=1,
                max_backoff=30,
            ):
                (result,) = info.values()
                doc_id = result.get("_id")
                if ok:
                    indexed += 1
                    pending.pop(doc_id, None)
                    continue
                status = result.get("status", "N/A")
                reason = json.dumps(result.get("error") or result.get("exception"), default=str)
                if status == "N/A" or status in RETRYABLE_STATUS:
                    retry[doc_id] = pending.pop(doc_id)
                    last = (status, reason[:1000])
                else:
                    failed.append((pending.pop(doc_id), f"rejected_{status}", reason[:1000]))
        except TransportError as exc:  # node down or unreachable: the whole request failed
            last = ("N/A", f"{exc.__class__.__name__}: {exc}"[:1000])
        retry.update(pending)
        if not retry:
            return indexed, failed
        pending = retry
        if attempt < settings.max_retries:
            delay = min(2**attempt, 30)
            log.warning(
                "Elasticsearch unavailable (%s); retrying %d docs in %ss",
                last[0],
                len(pending),
                delay,
            )
            time.sleep(delay)
    failed.extend((action, "unavailable", last[1]) for action in pending.values())
    return indexed, failed


@dataclasses.dataclass(frozen=True)
class IndexedDoc:
    """One document Elasticsearch accepted: enough to count what landed per source."""

    index: str
    doc_id: str
    source: str | None = None
    publisher: str | None = None


def indexed_docs(actions: list[dict[str, Any]], failed: list[tuple]) -> list[IndexedDoc]:
    """Return one ``IndexedDoc`` per distinct ``_id`` in ``actions`` that did not fail."""
    failed_ids = {action["_id"] for action, _reason, _detail in failed}
    by_id = {action["_id"]: action for action in actions}
    return [
        IndexedDoc(
            action["_index"],
            doc_id,
            action["_source"].get("source"),
            action["_source"].get("publisher"),
        )
        for doc_id, action in by_id.items()
        if doc_id not in failed_ids
    ]


class BulkIndexDoFn(beam.DoFn):
    """(key, [action]) -> IndexedDoc per written document; the rest go to ``dead_letter``."""

    def __init__(self, settings: ElasticsearchSettings, namespace: str = "wirestream") -> None:
        self.settings = settings
        self.indexed = Metrics.counter(namespace, "indexed")
        self.failed = Metrics.counter(namespace, "index_failed")
        self.batch_sizes = Metrics.distribution(namespace, "bulk_batch_size")

    def setup(self) -> None:
        from pipeline.elastic import make_client

        self.client = make_client(self.settings)

    def process(self, keyed_batch):
        _, actions = keyed_batch
        actions = list(actions)
        self.batch_sizes.update(len(actions))
        indexed, failed = bulk_index(self.client, actions, self.settings)
        self.indexed.inc(indexed)
        yield from indexed_docs(actions, failed)
        for action, reason, detail in failed:
            self.failed.inc()
            url = action["_source"].get("canonical_url", "")
            yield dead_letter(Failure("index", reason, url, detail, payload=action), logging.ERROR)

    def teardown(self) -> None:
        self.client.close()


class WriteToElasticsearch(beam.PTransform):
    """Article -> ``indexed`` (IndexedDoc) and ``dead_letter`` (Failure) outputs.

    Bulk batches are bounded in size and in waiting time.
    """

    def __init__(self, settings: ElasticsearchSettings) -> None:
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        prefix = self.settings.index_prefix
        return (
            articles
            | "ToAction"
            >> beam.Map(
                lambda a: (zlib.crc32(a.doc_id.encode()) % SHARD_KEYS, to_action(a, prefix))
            )
            | "Batch"
            >> beam.GroupIntoBatches(
                self.settings.batch_size,
                max_buffering_duration_secs=self.settings.max_wait_seconds,
            )
            | "Bulk"
            >> beam.ParDo(BulkIndexDoFn(self.settings)).with_outputs("dead_letter", main="indexed")
        )


_WRITE_LOCK = threading.Lock()


def append_dead_letter(directory: str | Path, failure: Failure) -> Path:
    """Append one failure as a JSON line to ``<dir>/<stage>-<YYYYMMDD>.jsonl``; return the file."""
    path = Path(directory) / f"{failure.stage}-{datetime.now(timezone.utc):%Y%m%d}.jsonl"
    record = {"time": datetime.now(timezone.utc).isoformat(), **dataclasses.asdict(failure)}
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    with _WRITE_LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def read_dead_letters(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Return the dead-letter records in ``paths`` (JSON lines)."""
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records


class WriteDeadLetters(beam.PTransform):
    """Failure -> appended to JSON-lines files that ``wirestream replay`` can re-index."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def expand(self, failures):
        directory = self.directory

        def write(failure: Failure) -> None:
            Metrics.counter("wirestream", "dead_letters").inc()
            append_dead_letter(directory, failure)

        return failures | "Append" >> beam.Map(write)
