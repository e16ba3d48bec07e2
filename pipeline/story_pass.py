"""Stories outside the stream: ``wirestream stories FILE.jsonl`` and the backfill's pass.

``wirestream stories``: each input line is a JSON object (``id``, ``title``, ``body``,
``published_at``, ``source``, ``url``; any may be missing). The article goes through the
pipeline's own normaliser, entity stage and :class:`~transforms.story_clustering.StoryClusterer`,
so thresholds tried here are the pipeline's.

The backfill's pass (:func:`cluster_index`) runs after the Beam job has written
everything: it reads the whole alias back in time order and clusters it in one sweep.
A backfill's workers see archives in no particular order, so assigning stories while
they write would make a story's first article, hence its id, depend on the schedule;
one ordered sweep makes the ids deterministic, and a re-run changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from dateutil import parser as dateparser

from pipeline.config import Settings
from pipeline.pages import Enrichment
from transforms.article import Article
from transforms.index.documents import story_action, write_version
from transforms.index.reads import input_of_document, scan_in_time_order
from transforms.language import with_language
from transforms.normalize import normalize_article
from transforms.story_clustering import (
    Assignment,
    StoryClusterer,
    StoryInput,
    cluster,
    clusterer_of,
    story_input,
)

__all__ = ["assign_rows", "cluster_index", "clusterer_of", "read_rows", "story_inputs"]

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """Return a UTC datetime from an ISO string, a date string or epoch (s or ms)."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, timezone.utc)
    try:
        parsed = dateparser.parse(str(value))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def article_of(row: dict[str, Any], index: int) -> Article:
    """Return the (not yet normalised) article a row describes, in the language its text
    is in (``language`` in the row is the declared one)."""
    url = str(row.get("url") or "")
    source = str(row.get("source") or urlsplit(url).hostname or "")
    published = parse_time(row.get("published_at"))
    article = Article(
        url=url,
        canonical_url=url or f"row:{index}",
        source=source,
        feed_url=None,
        title=str(row.get("title") or ""),
        body=str(row.get("body") or ""),
        fetched_at=published or EPOCH,
        published_at=published,
        language_declared=str(row["language"]) if row.get("language") else None,
    )
    return with_language(article)


def row_id(row: dict[str, Any], index: int) -> str:
    """Return the row's ``id``, else a hash of its URL, else its line number."""
    if row.get("id") not in (None, ""):
        return str(row["id"])
    if row.get("url"):
        return hashlib.sha256(str(row["url"]).encode()).hexdigest()[:32]
    return str(index)


def read_rows(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Yield the JSON object of each non-blank line; a bad line raises with its number."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {number}: not a JSON object")
        yield row


def story_inputs(rows: list[dict[str, Any]], enrichment: Enrichment | None) -> list[StoryInput]:
    """Return the clustering input of each row: normalised and, with ``enrichment``, tagged."""
    articles = [normalize_article(article_of(row, i)) for i, row in enumerate(rows)]
    if enrichment is not None:
        articles = enrichment.apply_all(articles)
    return [
        story_input(a, row_id(row, i))
        for i, (row, a) in enumerate(zip(rows, articles, strict=True))
    ]


def assign_rows(
    rows: list[dict[str, Any]], clusterer: StoryClusterer, enrichment: Enrichment | None
) -> list[Assignment]:
    """Return each row's assignment, in input order."""
    return cluster(story_inputs(rows, enrichment), clusterer)


# --- the backfill's pass over the index ---------------------------------------------

PAGE = 500  # articles per search page and per bulk update
WRITE_STORIES_EVERY = 5000  # articles between two writes of the changed stories


@dataclass
class PassResult:
    """What a pass over the index did."""

    articles: int = 0
    updated: int = 0
    stories: int = 0
    copies: int = 0
    deleted_stories: int = 0
    failed: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"stories: {self.articles} articles in {self.stories} stories ({self.copies} "
            f"copies); {self.updated} articles updated, {self.deleted_stories} stale stories "
            f"removed, {self.failed} writes failed, in {self.seconds:.0f} s"
        )


def cluster_index(settings: Settings, progress: bool = True) -> PassResult:
    """Assign stories to every article of the alias, in time order (the backfill sees
    everything, so it clusters in batch); update the articles whose story fields change
    and rewrite ``<prefix>-stories``, removing stories that no longer exist."""
    from tqdm import tqdm

    from transforms.index.bulk import bulk_index
    from transforms.index.client import make_client, scan
    from transforms.index.templates import install_stories_template

    es = settings.elasticsearch
    started, result = time.monotonic(), PassResult()
    client = make_client(es)
    index = install_stories_template(client, es)
    client.indices.refresh(index=es.alias, ignore_unavailable=True)
    total = client.count(index=es.alias, ignore_unavailable=True)["count"]
    clusterer = clusterer_of(settings.stories, batch=True)
    version = write_version()
    updates: list[dict[str, Any]] = []
    stories: list[dict[str, Any]] = []

    def flush(final: bool = False) -> None:
        for batch, is_story in ((updates, False), (stories, True)):
            if batch and (final or len(batch) >= PAGE):
                if not is_story:
                    with_search_copies(client, es.alias, batch)
                indexed, failed = bulk_index(client, batch, es)
                result.failed += len(failed)
                for action, reason, detail in failed[:5]:
                    log.warning("stories: %s of %s failed: %s", reason, action["_id"], detail)
                if not is_story:
                    result.updated += indexed
                batch.clear()

    if clusterer.refine:
        warming = scan(
            client,
            es.alias,
            {"_source": ["title_normalized", "body_normalized", "entities", "language"]},
            ignore_unavailable=True,
        )
        clusterer.warm(
            input_of_document(hit["_id"], hit["_source"])
            for hit in tqdm(warming, total=total, desc="stories: IDF", disable=not progress)
        )
    # what each article holds now, until its final assignment (refine: a window later)
    stored: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    assigned_to: set[str] = set()

    def settle(assigned: Assignment) -> None:
        assigned_to.add(assigned.story_id)
        fields = {
            "story_id": assigned.story_id,
            "duplicate_of": assigned.duplicate_of,
            "copy_group": assigned.copy_group,
        }
        for index_name, source in stored.pop(assigned.doc_id, []):  # one id in two indices
            result.copies += assigned.duplicate_of is not None
            if any(source.get(k) != v for k, v in fields.items()):
                updates.append(
                    {
                        "_op_type": "update",
                        "_index": index_name,
                        "_id": assigned.doc_id,
                        "doc": fields,
                    }
                )

    bar = tqdm(total=total, desc="stories", unit="doc", disable=not progress)
    for hit in scan_in_time_order(client, es.alias, {"match_all": {}}):
        source = hit["_source"]
        seen = hit["_id"] in stored
        stored.setdefault(hit["_id"], []).append(
            (hit["_index"], {k: source.get(k) for k in STORY_ID_FIELDS})
        )
        assigned = clusterer.assign(input_of_document(hit["_id"], source))
        result.articles += 1
        if not clusterer.refine:
            settle(assigned)
        elif not seen:  # else it is settled with its first copy
            for final in clusterer.take_finals():
                settle(final)
        if result.articles % WRITE_STORIES_EVERY == 0:
            stories.extend(story_action(doc, index, version) for doc in clusterer.take_touched())
        flush()
        bar.update()
    bar.close()
    for final in clusterer.finish() if clusterer.refine else []:
        settle(final)
    stories.extend(story_action(doc, index, version) for doc in clusterer.take_touched())
    flush(final=True)
    result.stories = len(assigned_to)
    result.deleted_stories = _delete_stale_stories(client, index, assigned_to, es)
    client.close()
    result.seconds = time.monotonic() - started
    return result


STORY_ID_FIELDS = ("story_id", "duplicate_of", "copy_group")


def with_search_copies(client, alias: str, updates: list[dict[str, Any]]) -> None:
    """Add to each partial update the article's ``search`` copy: it is not in ``_source``,
    so an update, which rewrites the document from ``_source``, would drop it."""
    from transforms.analysis import search_fields

    found = client.search(
        index=alias,
        query={"ids": {"values": sorted({u["_id"] for u in updates})}},
        size=2 * len(updates),  # an id can be in two monthly indices
        source_includes=["title", "body", "language"],
    )["hits"]["hits"]
    texts = {(h["_index"], h["_id"]): h["_source"] for h in found}
    for update in updates:
        source = texts.get((update["_index"], update["_id"]), {})
        update["doc"] = update["doc"] | search_fields(
            source.get("title") or "", source.get("body") or "", source.get("language")
        )


def _delete_stale_stories(client, index: str, kept: set[str], es) -> int:
    """Delete the stories documents a pass did not write (stories that merged away)."""
    from transforms.index.bulk import bulk_index
    from transforms.index.client import scan

    client.indices.refresh(index=index, ignore_unavailable=True)
    stale = [
        {"_op_type": "delete", "_index": index, "_id": hit["_id"]}
        for hit in scan(client, index, {"_source": False}, ignore_unavailable=True)
        if hit["_id"] not in kept
    ]
    if stale:
        bulk_index(client, stale, es)
    return len(stale)
